package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/ingest"
)

// apply makes a reloaded configuration the running one (config.Applier): the
// alarm rules and the archive filters first, each replaced at once, so that
// the new devices' first samples meet them; then the devices, as a diff
// (devicemgr.Manager.Apply). What fails is reported; the rest is applied.
func (a *app) apply(_, next *config.Config, r *config.Reload) error {
	var errs []error
	if r.Diff.Alarms {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.alarms.SetRules(ctx, alarmRules(next), r.By)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("alarm rules: %w", err))
		}
	}
	if r.Diff.ArchiveFilter {
		for _, f := range []*ingest.Filter{a.filter, a.wfilter} {
			if f != nil {
				f.SetSpecs(next.ArchiveFilterSpecs())
			}
		}
	}
	if _, err := a.devices.Apply(next.Specs()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// alarmRules are a configuration's alarm rules and the server's own
// (alarm.SystemRules: the archives' spools, the hub's back-pressure).
func alarmRules(cfg *config.Config) []alarm.Rule {
	return append(cfg.AlarmRules(), alarm.SystemRules()...)
}

// reloadSource is the source of reload events in the device events table.
const reloadSource = "configuration"

// recordReload archives a reload (applied or refused) in the device events
// table (source "configuration", kind "reloaded" or "refused"; the message
// says who, how and what changed, the detail holds the whole record as JSON)
// and announces an applied one on the supervision tree, which streams it on
// WatchSupervisionEvents and WatchDevices.
func (a *app) recordReload(r config.Reload) {
	if a.events != nil {
		kind := "reloaded"
		if !r.Applied {
			kind = "refused"
		}
		detail, _ := json.Marshal(reloadDetail{Hash: r.Hash, PreviousHash: r.PreviousHash, Source: r.Source,
			By: r.By, Trigger: string(r.Trigger), Diff: r.Diff, Errors: r.Errors, Failed: r.Failed})
		// The archive's intake is bounded: a reload waits for room a while
		// rather than go unrecorded, then says so.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.events.Record(ctx, ingest.Event{TimeNs: r.Time.UnixNano(), Source: reloadSource, Kind: kind,
			Message: fmt.Sprintf("by %s (%s): %s", r.By, r.Trigger, r.Summary()), Detail: string(detail)})
		cancel()
		if err != nil {
			a.log.Error("configuration reload not archived", "err", err, "hash", r.Hash)
		}
	}
	if r.Applied {
		a.root.Reconfigured(r.Summary(), &r)
	}
}

// reloadDetail is the JSON of a reload event's detail column.
type reloadDetail struct {
	Hash         string      `json:"hash"`
	PreviousHash string      `json:"previous_hash"`
	Source       string      `json:"source"`
	By           string      `json:"by"`
	Trigger      string      `json:"trigger"`
	Diff         config.Diff `json:"diff"`
	Errors       []string    `json:"errors,omitempty"`
	Failed       []string    `json:"failed,omitempty"`
}
