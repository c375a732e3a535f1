package ingest

import (
	"fmt"
	"strings"
	"unicode"
)

// DefaultTable is the archive table's name when Options.Table is empty.
const DefaultTable = "samples"

// Column names of the archive table.
const (
	colDevice      = "device"
	colChannel     = "channel"
	colSeq         = "seq"
	colValueDouble = "value_double"
	colValueLong   = "value_long"
	colValueString = "value_string"
	colValueBool   = "value_bool"
	colQuality     = "quality"
	colError       = "error"
)

// CreateTableSQL returns the statement that creates the archive table if it is
// missing. DEDUP keys make a re-sent batch harmless.
func CreateTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(table) + ` (
	ts TIMESTAMP,
	device SYMBOL,
	channel SYMBOL,
	seq LONG,
	value_double DOUBLE,
	value_long LONG,
	value_string VARCHAR,
	value_bool BOOLEAN,
	quality SYMBOL,
	error VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device, channel, seq)`
}

// CreateWideTableSQL returns the statement that creates a table of the wide
// layout if it is missing: one row per device per reading (a poll's reply, a
// pushed line), a column per channel. The channels' columns are not listed:
// ILP adds each the first time a row carries it. The DEDUP keys are those of
// the narrow table, taken from the row's first sample (its channel and seq),
// so a re-sent row lands once and two rows never share a key.
func CreateWideTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(table) + ` (
	ts TIMESTAMP,
	device SYMBOL,
	channel SYMBOL,
	seq LONG,
	quality SYMBOL,
	error VARCHAR,
	channels VARCHAR,
	detail VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device, channel, seq)`
}

// validateTableName rejects names that QuestDB's ILP client would refuse for every
// row (which would turn every sample into a bad row).
func validateTableName(name string) error {
	if name == "" {
		return fmt.Errorf("ingest: table name is empty")
	}
	if len(name) > 127 {
		return fmt.Errorf("ingest: table name %q: longer than 127 bytes", name)
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("ingest: table name %q: must not start or end with '.'", name)
	}
	for i, r := range name {
		if strings.ContainsRune("\n\r?,'\"\\/:)(+*%~", r) || !unicode.IsPrint(r) {
			return fmt.Errorf("ingest: table name %q: character %q at %d is not allowed", name, r, i)
		}
	}
	return nil
}

// quoteIdent quotes a validated identifier for SQL.
func quoteIdent(name string) string { return `"` + name + `"` }
