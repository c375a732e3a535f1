package telemetry

import "sync/atomic"

// encodedCache holds one published sample's wire encoding. Publish makes one per
// sample, and every copy of that sample (in each subscription's queue, in Latest)
// points at it, so a consumer that sends the sample to many clients encodes it once.
type encodedCache struct {
	b atomic.Pointer[[]byte]
}

// Encoded returns the encoding of s that encode produces. For a sample delivered by
// a Hub the result is cached and shared by every copy of that published sample, so
// encode runs about once per sample however many subscribers send it; for any other
// sample (built by hand, read back from the archive) encode runs on every call.
//
// The cache has one slot: every caller must pass an equivalent encode (the API
// layer's wire encoding), and a copy whose fields were changed after delivery must
// not use Encoded (call Detach first). The returned slice is shared: never modify it.
//
// Encoded is safe for concurrent use; two callers racing on a fresh sample may both
// encode it, and one of the identical results is kept. It never blocks.
func (s *Sample) Encoded(encode func(*Sample) []byte) []byte {
	c := s.enc
	if c == nil {
		return encode(s)
	}
	if p := c.b.Load(); p != nil {
		return *p
	}
	b := encode(s)
	c.b.CompareAndSwap(nil, &b)
	return b
}

// Detach drops s's link to the shared encoding cache, for a copy whose fields are
// about to change.
func (s *Sample) Detach() { s.enc = nil }
