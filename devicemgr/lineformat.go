package devicemgr

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// field is one key and its value's text from a pushed line.
type field struct{ key, value string }

// lineParser splits pushed lines into fields. It keeps the CSV header of the
// current connection, so a new parser is made for every connection.
type lineParser struct {
	format string
	header []string
	fields []field // the key=value parser's result, reused line after line
}

// parse returns the fields of one line, nil fields and no error for a CSV
// header, or an error that names the line.
func (p *lineParser) parse(line string) ([]field, error) {
	switch p.format {
	case LinesCSV:
		return p.parseCSV(line)
	case LinesJSON:
		return parseJSONLine(line)
	default:
		var err error
		p.fields, err = appendKeyValues(p.fields[:0], line)
		return p.fields, err
	}
}

func parseKeyValue(line string) ([]field, error) { return appendKeyValues(nil, line) }

// appendKeyValues appends the key=value pairs of line, separated by white
// space, to out.
func appendKeyValues(out []field, line string) ([]field, error) {
	for f := range strings.FieldsSeq(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("want key=value pairs, got line %q", clip(line))
		}
		out = append(out, field{k, v})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty line")
	}
	return out, nil
}

func splitCSV(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("want comma-separated values, got line %q: %v", clip(line), err)
	}
	return rec, nil
}

// parseCSV takes the first line as the header; a later line equal to the
// header (a device that restarts its stream) is a header again.
func (p *lineParser) parseCSV(line string) ([]field, error) {
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("empty line")
	}
	rec, err := splitCSV(line)
	if err != nil {
		return nil, err
	}
	if p.header == nil || slices.Equal(rec, p.header) {
		for i, h := range rec {
			if h == "" {
				return nil, fmt.Errorf("CSV header %q: column %d has no name", clip(line), i+1)
			}
		}
		p.header = rec
		return nil, nil
	}
	if len(rec) != len(p.header) {
		return nil, fmt.Errorf("want %d CSV columns (%s), got %d in line %q",
			len(p.header), clip(strings.Join(p.header, ",")), len(rec), clip(line))
	}
	out := make([]field, len(rec))
	for i, v := range rec {
		out[i] = field{p.header[i], v}
	}
	return out, nil
}

// parseJSONLine reads one JSON object; numbers, booleans and strings become
// fields (in key order), other values are ignored.
func parseJSONLine(line string) ([]field, error) {
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, fmt.Errorf("want a JSON object, got line %q", clip(line))
	}
	if dec.More() {
		return nil, fmt.Errorf("want one JSON object, got more in line %q", clip(line))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]field, 0, len(keys))
	for _, k := range keys {
		switch v := obj[k].(type) {
		case json.Number:
			out = append(out, field{k, v.String()})
		case bool:
			out = append(out, field{k, strconv.FormatBool(v)})
		case string:
			out = append(out, field{k, v})
		}
	}
	return out, nil
}
