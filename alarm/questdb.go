package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/supervisor"
)

// DefaultEventsTable is the QuestDB table of alarm transitions.
const DefaultEventsTable = "alarm_events"

// CreateEventsTableSQL returns the statement that creates the transitions table if
// it is missing. The DEDUP keys make a re-sent batch harmless.
func CreateEventsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS "` + table + `" (
	ts TIMESTAMP,
	device SYMBOL,
	channel SYMBOL,
	alarm_group SYMBOL,
	event SYMBOL,
	cond SYMBOL,
	severity SYMBOL,
	latched SYMBOL,
	acked BOOLEAN,
	reading DOUBLE,
	quality SYMBOL,
	message VARCHAR,
	who VARCHAR,
	comment VARCHAR,
	hihi DOUBLE,
	high DOUBLE,
	low DOUBLE,
	lolo DOUBLE,
	hysteresis DOUBLE,
	delay_ms LONG,
	limits VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device, channel, event)`
}

// QuestDBSink archives transitions to QuestDB over ILP/HTTP, each row with the
// limits in force. Record queues without bound and never blocks; Serve delivers,
// keeping its own copy of a batch until QuestDB acknowledged it, and retries with
// backoff. Create it with NewQuestDBSink.
type QuestDBSink struct {
	addr, table string
	log         *slog.Logger
	wake        chan struct{}

	mu sync.Mutex
	q  []Transition
}

// NewQuestDBSink returns a sink writing to table (DefaultEventsTable when empty) of
// the QuestDB whose HTTP port is addr. log may be nil.
func NewQuestDBSink(addr, table string, log *slog.Logger) *QuestDBSink {
	if table == "" {
		table = DefaultEventsTable
	}
	if log == nil {
		log = slog.Default()
	}
	return &QuestDBSink{addr: addr, table: table, log: log, wake: make(chan struct{}, 1)}
}

// Record implements Sink.
func (s *QuestDBSink) Record(t Transition) {
	s.mu.Lock()
	s.q = append(s.q, t)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pending returns how many transitions wait to be archived.
func (s *QuestDBSink) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

// drainTimeout bounds the last deliveries after Serve's context ended.
const drainTimeout = 10 * time.Second

// Serve creates the table and delivers transitions until ctx ends, then tries for
// up to 10 s more to deliver what is queued.
func (s *QuestDBSink) Serve(ctx context.Context) error {
	wait := func(ctx context.Context, d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	delay := &supervisor.Retry{Backoff: supervisor.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.5}}
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := ingest.Query(cctx, s.addr, CreateEventsTableSQL(s.table))
		cancel()
		if err == nil {
			break
		}
		s.log.Warn("alarm archive: creating table failed; retrying", "table", s.table, "err", err)
		if !wait(ctx, delay.Next()) {
			return nil
		}
	}
	sender, err := s.newSender()
	if err != nil {
		return err
	}
	defer func() { _ = sender.Close(context.Background()) }()
	delay.Reset()
	for {
		if ctx.Err() != nil {
			s.drain(sender)
			return nil
		}
		select {
		case <-ctx.Done():
			continue
		case <-s.wake:
		}
		for s.Pending() > 0 && ctx.Err() == nil {
			if err := s.deliver(ctx, sender); err != nil {
				s.log.Warn("alarm archive: delivery failed; retrying", "pending", s.Pending(), "err", err)
				_ = sender.Close(context.Background())
				if sender, err = s.newSender(); err != nil {
					return err
				}
				wait(ctx, delay.Next())
				continue
			}
			delay.Reset()
		}
	}
}

// drain delivers what is queued after Serve's context ended, for up to
// drainTimeout.
func (s *QuestDBSink) drain(sender qdb.LineSender) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for s.Pending() > 0 {
		if err := s.deliver(ctx, sender); err != nil {
			s.log.Error("alarm archive: transitions not archived at shutdown", "count", s.Pending(), "err", err)
			return
		}
	}
}

func (s *QuestDBSink) newSender() (qdb.LineSender, error) {
	conf := fmt.Sprintf("http::addr=%s;auto_flush=off;request_min_throughput=102400;request_timeout=10000;retry_timeout=5000;", s.addr)
	sender, err := qdb.LineSenderFromConf(context.Background(), conf)
	if err != nil {
		return nil, fmt.Errorf("alarm archive: QuestDB sender for %s: %w", s.addr, err)
	}
	return sender, nil
}

// deliver sends up to 1000 queued transitions and removes them once QuestDB
// acknowledged them. On failure they stay queued.
func (s *QuestDBSink) deliver(ctx context.Context, sender qdb.LineSender) error {
	s.mu.Lock()
	batch := s.q[:min(len(s.q), 1000)]
	s.mu.Unlock()
	for i := range batch {
		if err := s.encode(ctx, sender, &batch[i]); err != nil {
			return err
		}
	}
	if err := sender.Flush(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	n := copy(s.q, s.q[len(batch):])
	clear(s.q[n:])
	s.q = s.q[:n]
	s.mu.Unlock()
	return nil
}

func (s *QuestDBSink) encode(ctx context.Context, sender qdb.LineSender, t *Transition) error {
	a := &t.Alarm
	l := &a.Limits
	sender.Table(s.table).
		Symbol("device", a.Device).
		Symbol("channel", a.Channel)
	if a.Group != "" {
		sender.Symbol("alarm_group", a.Group)
	}
	sender.Symbol("event", t.Event.String()).
		Symbol("cond", a.Condition.String()).
		Symbol("severity", a.Severity.String()).
		Symbol("latched", a.Latched.String()).
		Symbol("quality", a.Quality.String()).
		BoolColumn("acked", a.Acked)
	if a.HasValue {
		sender.Float64Column("reading", a.Value)
	}
	if a.Message != "" {
		sender.StringColumn("message", a.Message)
	}
	if t.Who != "" {
		sender.StringColumn("who", t.Who)
	}
	if t.Comment != "" {
		sender.StringColumn("comment", t.Comment)
	}
	for _, c := range []struct {
		name string
		t    Threshold
	}{{"hihi", l.HiHi}, {"high", l.High}, {"low", l.Low}, {"lolo", l.LoLo}} {
		if c.t.Enabled() {
			sender.Float64Column(c.name, c.t.Value)
		}
	}
	sender.Float64Column("hysteresis", l.Hysteresis).
		Int64Column("delay_ms", l.Delay.Milliseconds()).
		StringColumn("limits", l.String())
	return sender.At(ctx, t.Time)
}
