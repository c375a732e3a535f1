package ingest

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// SampleWriter archives telemetry samples: a Writer of SampleTable.
type SampleWriter = Writer[telemetry.Sample]

// SampleTable is the archive table of telemetry samples (DefaultTable unless
// Options.Table says otherwise); see the package doc for its columns.
func SampleTable() Table[telemetry.Sample] {
	return Table[telemetry.Sample]{
		Name:     DefaultTable,
		Create:   CreateTableSQL,
		Row:      EncodeSample,
		Append:   appendRecord,
		Decode:   DecodeSample,
		Time:     func(s *telemetry.Sample) int64 { return s.TimeNs },
		Describe: describeSample,
	}
}

// NewSampleWriter returns a Writer that archives the samples of src (a hub
// subscription with the Lossless policy) through app, with opts.Filter as its
// archive filter.
func NewSampleWriter(app Appender, src Source[telemetry.Sample], opts Options) (*SampleWriter, error) {
	w, err := NewWriter(app, src, SampleTable(), opts)
	if err != nil {
		return nil, err
	}
	if f := opts.Filter; f != nil {
		w.keep = f.filter
	}
	return w, nil
}

// EncodeSample writes one sample as a row of the samples table.
func EncodeSample(ctx context.Context, r Row, _ string, smp *telemetry.Sample) error {
	r.Symbol(colDevice, smp.Device).
		Symbol(colChannel, smp.Channel).
		Symbol(colQuality, smp.Quality.String()).
		Int64(colSeq, int64(smp.Seq))
	if smp.Quality == telemetry.Good {
		switch smp.Value.Kind {
		case telemetry.KindFloat:
			r.Float64(colValueDouble, smp.Value.F)
		case telemetry.KindInt:
			r.Int64(colValueLong, smp.Value.I)
		case telemetry.KindString:
			r.String(colValueString, smp.Value.S)
		case telemetry.KindBool:
			r.Bool(colValueBool, smp.Value.B)
		}
	}
	if smp.Err != "" {
		r.String(colError, smp.Err)
	}
	return r.At(ctx, time.Unix(0, smp.TimeNs))
}
