package ingest

import (
	"context"
	"errors"
)

// Table describes one kind of archived record: the QuestDB table it fills, how
// a record is written into the spool and read back (its codec), and how it
// becomes a row. Samples (SampleTable), device events (EventTable) and alarm
// transitions (package alarm) are each a Table of their own type.
type Table[T any] struct {
	// Name is the table. Required.
	Name string
	// Create returns the statement that creates the table if it is missing,
	// with DEDUP keys that make a re-sent batch harmless. Required.
	Create func(table string) string
	// Row encodes v as one row of table and ends it with At. It must check v
	// before writing anything: an error sets the record aside in the
	// dead-letter file instead of archiving it. Required.
	Row func(ctx context.Context, r Row, table string, v *T) error
	// Append appends v's spool encoding to dst; Decode reads it back (every
	// failure an error, never a panic: a spool can be damaged). Required.
	Append func(dst []byte, v *T) []byte
	Decode func(b []byte) (T, error)
	// Time is v's timestamp in nanoseconds, for the age of the oldest record
	// not yet acknowledged. Default: none (the age gauge stays 0).
	Time func(v *T) int64
	// Describe fills the dead-letter line (and the log line) of a record that
	// is set aside. Default: the record's spool encoding, in hex.
	Describe func(v *T, dl *DeadLetter)
	// Columns and Scan read the table back (a Log, for a replay): the columns
	// to select, in order, and how one row of them becomes a record (see
	// Cells). Default none: the table cannot be read back.
	Columns []string
	Scan    func(row []any) (T, error)
}

func (t *Table[T]) check() error {
	if t.Name == "" {
		return errors.New("ingest: table has no name")
	}
	if t.Create == nil || t.Row == nil || t.Append == nil || t.Decode == nil {
		return errors.New("ingest: table " + t.Name + " needs Create, Row, Append and Decode")
	}
	return validateTableName(t.Name)
}
