package server

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/backoff"
	"github.com/switchyard/switchyard/telemetry"
)

// replayPage is how many archived rows one replay query reads.
const replayPage = 10000

// replay is the first part of Subscribe with since_ns; the stream's usual live
// loop follows it, so the switch has no gap and no duplicate:
//
//  1. The stream's hub subscription already exists, so every sample published
//     from then on is queued for it (DropOldest, counted in dropped as usual).
//  2. replay waits until every sample published before that is archived and
//     visible to queries (Archive.Settle; through QuestDB outages).
//  3. It sends the archive from sinceNs in time order and returns, per channel,
//     the newest timestamp it sent.
//  4. The live loop skips queued and later samples of a channel that are not
//     newer than that (the replay may have read them too).
//
// Timestamps are compared at QuestDB's microsecond precision; within a channel
// they increase, so (device, channel, seq) never repeats in the stream.
func (s *telemetryService) replay(ctx context.Context, sinceNs int64, st *subscribeStream) (map[string]int64, error) {
	if err := s.archive.Settle(ctx); err != nil {
		return nil, err
	}
	p := st.p
	newest := map[string]int64{} // channel key -> µs timestamp of the newest replayed sample
	from := sinceNs
	batch := make([]telemetry.Sample, 0, p.maxBatch)
	for {
		page, err := s.replayPage(ctx, from)
		if err != nil {
			return nil, err
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
				if err := st.sendSamples(batch, false); err != nil {
					return nil, err
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
	if len(batch) > 0 {
		if err := st.sendSamples(batch, false); err != nil {
			return nil, err
		}
	}
	if len(newest) == 0 {
		return nil, nil
	}
	return newest, nil
}

// replayPage reads one page of the archive, retrying with backoff while the
// failure is one that passes (QuestDB down or restarting: the error says so,
// see backoff.IsRecoverable); any other error ends the replay.
func (s *telemetryService) replayPage(ctx context.Context, fromNs int64) (page []telemetry.Sample, err error) {
	b := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second})
	err = backoff.Retry(ctx, b, func() error {
		page, err = s.archive.Since(ctx, fromNs, replayPage)
		return err
	}, nil)
	return page, err
}
