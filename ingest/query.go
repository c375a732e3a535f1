package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

// queryClient sends /exec requests. Keep-alives are off so that an idle query
// connection never outlives its call (no background goroutines to leak or close).
var queryClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	DisableKeepAlives:   true,
	TLSHandshakeTimeout: 10 * time.Second,
}}

// QueryError is an error QuestDB reported for a SQL statement.
type QueryError struct {
	SQL        string
	Message    string // QuestDB's message
	Position   int    // character offset in SQL that QuestDB blamed, -1 if none
	HTTPStatus int
}

// Error returns QuestDB's message with the statement it was about.
func (e *QueryError) Error() string {
	return fmt.Sprintf("questdb: %s (HTTP %d, at position %d of %s)", e.Message, e.HTTPStatus, e.Position, shortSQL(e.SQL))
}

// Recoverable reports whether asking again may succeed: QuestDB answered with a
// server-side failure (5xx), not with a problem of the statement.
func (e *QueryError) Recoverable() bool { return e.HTTPStatus >= 500 }

// shortSQL quotes a statement for an error message, cut to a readable length.
func shortSQL(sql string) string {
	const max = 120
	if len(sql) > max {
		return strconv.Quote(sql[:max]) + "..."
	}
	return strconv.Quote(sql)
}

type execResponse struct {
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Dataset  [][]any `json:"dataset"`
	Error    *string `json:"error"`
	Position *int    `json:"position"`
}

// Query runs one SQL statement through QuestDB's HTTP /exec endpoint at httpAddr
// ("host:port") and returns the column names and rows. Numbers come back as
// json.Number, so 64-bit integers keep their precision; strings, booleans and
// nulls as string, bool and nil; timestamps as RFC 3339 strings. A statement
// without a result set (DDL) returns no columns and no rows. QuestDB's own errors
// are *QueryError; transport errors are wrapped as they come, marked
// recoverable (backoff.IsRecoverable), as are QuestDB's 5xx answers.
func Query(ctx context.Context, httpAddr, sql string) (columns []string, rows [][]any, err error) {
	columns, rows, err = query(ctx, httpAddr, sql)
	var qe *QueryError
	if err != nil && !errors.As(err, &qe) {
		err = fmt.Errorf("questdb query %s at %s: %w", shortSQL(sql), httpAddr, err)
	}
	return columns, rows, err
}

// query is Query with transport errors left unwrapped, for callers that say what
// the statement was for in their own words.
func query(ctx context.Context, httpAddr, sql string) (columns []string, rows [][]any, err error) {
	cols, rows, err := queryTyped(ctx, httpAddr, sql)
	if err != nil {
		return nil, nil, err
	}
	columns = make([]string, len(cols))
	for i, c := range cols {
		columns[i] = c.Name
	}
	return columns, rows, nil
}

// column is a result column: its name and QuestDB type ("DOUBLE", "LONG",
// "VARCHAR", "BOOLEAN", "SYMBOL", "TIMESTAMP", ...).
type column struct{ Name, Type string }

// queryTyped is query with the columns' types.
func queryTyped(ctx context.Context, httpAddr, sql string) (columns []column, rows [][]any, err error) {
	u := "http://" + httpAddr + "/exec?" + url.Values{"query": {sql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := queryClient.Do(req)
	if err != nil {
		// The *url.Error would repeat the whole statement URL-encoded.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, backoff.Recoverable(err) // QuestDB down or restarting
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("reading answer: %w", err)
		}
		return nil, nil, backoff.Recoverable(fmt.Errorf("reading answer: %w", err))
	}
	var r execResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, nil, &QueryError{SQL: sql, Message: fmt.Sprintf("unexpected answer %.200q", body), Position: -1, HTTPStatus: resp.StatusCode}
	}
	if r.Error != nil || resp.StatusCode >= 300 {
		qe := &QueryError{SQL: sql, Position: -1, HTTPStatus: resp.StatusCode}
		if r.Error != nil {
			qe.Message = *r.Error
		} else {
			qe.Message = fmt.Sprintf("unexpected answer %.200q", body)
		}
		if r.Position != nil {
			qe.Position = *r.Position
		}
		return nil, nil, qe
	}
	columns = make([]column, len(r.Columns))
	for i, c := range r.Columns {
		columns[i] = column{Name: c.Name, Type: c.Type}
	}
	return columns, r.Dataset, nil
}

// CountRows returns the number of rows of table that satisfy where, a SQL boolean
// expression (all rows when where is empty). where is pasted into the statement as
// it is: pass only trusted text.
func CountRows(ctx context.Context, httpAddr, table, where string) (int64, error) {
	if err := validateTableName(table); err != nil {
		return 0, err
	}
	sql := "SELECT count() FROM " + quoteIdent(table)
	if where != "" {
		sql += " WHERE " + where
	}
	return QueryInt(ctx, httpAddr, sql)
}

// QueryInt runs a statement whose result is one integer (a count, a sum) and
// returns it.
func QueryInt(ctx context.Context, httpAddr, sql string) (int64, error) {
	_, rows, err := Query(ctx, httpAddr, sql)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("questdb query %s: want one value, got %d rows", shortSQL(sql), len(rows))
	}
	switch v := rows[0][0].(type) {
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("questdb query %s: %w", shortSQL(sql), err)
		}
		return n, nil
	case nil:
		return 0, fmt.Errorf("questdb query %s: result is null", shortSQL(sql))
	default:
		return 0, fmt.Errorf("questdb query %s: want an integer, got %T %v", shortSQL(sql), v, v)
	}
}
