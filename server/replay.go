package server

import (
	"context"
	"time"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// replayPage is how many archived rows one replay query reads.
const replayPage = 10000

// subscribeSince serves Subscribe with since_ns: it replays the archive from
// sinceNs, then streams live samples, with no gap and no duplicate:
//
//  1. It subscribes to the hub first, so every sample published from then on is
//     queued for this stream (DropOldest, counted in dropped as usual).
//  2. It waits until every sample published before that is archived and visible
//     to queries (Archive.Settle; through QuestDB outages).
//  3. It replays the archive from sinceNs in time order, remembering per channel
//     the newest timestamp it sent.
//  4. It streams the queued and later live samples, skipping those of a channel
//     not newer than the newest replayed one (the replay may have read them too).
//
// Timestamps are compared at QuestDB's microsecond precision; within a channel
// they increase, so (device, channel, seq) never repeats in the stream.
func (s *telemetryService) subscribeSince(ctx context.Context, sinceNs int64, p subscribeParams, out streamOut[pb.SubscribeResponse]) error {
	if sinceNs < 0 {
		return errField("since_ns", "must be >= 0, got %d", sinceNs)
	}
	if s.archive == nil {
		return errNoArchive
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("Subscribe")()

	sub := s.hub.Subscribe(telemetry.SubscribeOptions{
		Name:     "api-since",
		Capacity: subscribeCapacity,
		Policy:   telemetry.DropOldest,
		Match:    p.match,
	})
	defer sub.Close()
	if err := out.header(); err != nil {
		return err
	}
	if err := s.archive.Settle(ctx); err != nil {
		return err
	}

	newest := map[string]int64{} // channel key -> µs timestamp of the newest replayed sample
	send := func(batch []telemetry.Sample) error {
		if len(batch) == 0 {
			return nil
		}
		return out.send(&pb.SubscribeResponse{Samples: samplesToProto(batch), Dropped: sub.Dropped()})
	}
	from := sinceNs
	batch := make([]telemetry.Sample, 0, p.maxBatch)
	for {
		page, err := s.replayPage(ctx, from)
		if err != nil {
			return err
		}
		pageMax := from / 1000
		for _, smp := range page {
			pageMax = max(pageMax, smp.TimeNs/1000)
			if p.match != nil && !p.match(&smp) {
				continue
			}
			key := smp.Key()
			if us, ok := newest[key]; ok && smp.TimeNs/1000 <= us {
				continue // read again at a page boundary
			}
			newest[key] = smp.TimeNs / 1000
			batch = append(batch, smp)
			if len(batch) == p.maxBatch {
				if err := send(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(page) < replayPage {
			break
		}
		if next := pageMax * 1000; next > from {
			from = next
		} else {
			from += 1000 // a full page of one microsecond: move on
		}
	}
	if err := send(batch); err != nil {
		return err
	}

	buf := make([]telemetry.Sample, 0, p.maxBatch)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-sub.Ready():
		}
		for {
			buf = sub.Drain(buf[:0], p.maxBatch)
			if len(buf) == 0 {
				break
			}
			live := buf[:0]
			for _, smp := range buf {
				if us, ok := newest[smp.Key()]; ok {
					if smp.TimeNs/1000 <= us {
						continue
					}
					delete(newest, smp.Key())
				}
				live = append(live, smp)
			}
			if err := send(live); err != nil {
				return err
			}
			clear(buf)
		}
	}
}

// replayPage reads one page of the archive, retrying with backoff while QuestDB
// does not answer.
func (s *telemetryService) replayPage(ctx context.Context, fromNs int64) ([]telemetry.Sample, error) {
	delay := 100 * time.Millisecond
	for {
		page, err := s.archive.Since(ctx, fromNs, replayPage)
		if err == nil {
			return page, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
