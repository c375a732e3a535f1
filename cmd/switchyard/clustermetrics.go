package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clusterCollector exposes a cluster node's counters at /metrics: the lease
// protocol's (leases held, acquired, released, fenced, lost, renewals that
// failed, fence overruns), routed requests by outcome, what the publisher
// and this node's archiver did, the alarm transitions other nodes missed,
// and the archive's lag behind the stream (read from NATS at each scrape).
type clusterCollector struct {
	cs *clusterSide

	leases, archivePending, archiveUnacked                     *prometheus.Desc
	acquired, released, fenced, lost, overruns, renewFailures  *prometheus.Desc
	routed, published, discarded, archived, refused, unrelayed *prometheus.Desc
}

func newClusterCollector(cs *clusterSide) *clusterCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("switchyard_cluster_"+name, help, labels, nil)
	}
	return &clusterCollector{cs: cs,
		leases:         d("leases_held", "Device leases this node holds."),
		archivePending: d("archive_pending_batches", "Sample batches in the stream no archiver has taken yet."),
		archiveUnacked: d("archive_unacked_batches", "Sample batches an archiver took and QuestDB has not confirmed yet."),
		acquired:       d("leases_acquired_total", "Device leases this node won."),
		released:       d("leases_released_total", "Device leases this node handed over (placement or shutdown)."),
		fenced:         d("fences_total", "Devices this node stopped because it could not renew their leases in time."),
		lost:           d("leases_lost_total", "Devices this node stopped because another node took their lease."),
		overruns:       d("fence_overruns_total", "Devices that stopped after their lease could have expired elsewhere."),
		renewFailures:  d("lease_renewal_failures_total", "Lease renewals the NATS server did not confirm."),
		routed: d("routed_requests_total", "Commands, aborts and alarm actions this node sent to a device's owner, by outcome "+
			"(answered, failover: no owner, no_answer: none within the deadline, failed).", "outcome"),
		published: d("published_samples_total", "Samples of the devices this node owns published to the stream."),
		discarded: d("discarded_samples_total", "Samples polled while cut off that another owner's batches overtook."),
		archived:  d("archived_samples_total", "Samples this node's archiver wrote from the stream into QuestDB."),
		refused:   d("archive_refused_batches_total", "Batches this node's archiver could not store (offered again later)."),
		unrelayed: d("alarm_transitions_unpublished_total", "Alarm transitions of owned devices other nodes' watches missed (queue full or stream refused)."),
	}
}

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leases, c.archivePending, c.archiveUnacked, c.acquired, c.released, c.fenced,
		c.lost, c.overruns, c.renewFailures, c.routed, c.published, c.discarded, c.archived, c.refused, c.unrelayed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	cs := c.cs
	if cs.node != nil {
		ch <- prometheus.MustNewConstMetric(c.leases, prometheus.GaugeValue, float64(len(cs.node.Owned())))
		s := cs.node.Stats()
		counter(c.acquired, s.Acquired)
		counter(c.released, s.Released)
		counter(c.fenced, s.Fenced)
		counter(c.lost, s.Lost)
		counter(c.overruns, s.FenceOverruns)
		counter(c.renewFailures, s.RenewFailures)
	}
	r := cs.router.Stats()
	counter(c.routed, r.Answered, "answered")
	counter(c.routed, r.Failover, "failover")
	counter(c.routed, r.NoAnswer, "no_answer")
	counter(c.routed, r.Failed, "failed")
	p := cs.pub.Stats()
	counter(c.published, p.Samples)
	counter(c.discarded, p.Discarded)
	if cs.archiver != nil {
		a := cs.archiver.Stats()
		counter(c.archived, a.Samples)
		counter(c.refused, a.Refused)
	}
	if cs.saver != nil {
		dropped, failed := cs.saver.Stats()
		counter(c.unrelayed, dropped+failed)
	}
	// The lag is the stream's, read from NATS: a scrape while NATS is away
	// leaves it out rather than waiting.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if lag, err := cs.c.ArchiverLag(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.archivePending, prometheus.GaugeValue, float64(lag.Pending))
		ch <- prometheus.MustNewConstMetric(c.archiveUnacked, prometheus.GaugeValue, float64(lag.Unacked))
	}
}

var _ prometheus.Collector = (*clusterCollector)(nil)
