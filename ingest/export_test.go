package ingest

// EncodeRow exposes encodeRow to the external tests (BenchmarkRawClient sends the
// Writer's exact rows straight through the client).
var EncodeRow = encodeRow
