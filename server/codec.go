package server

import (
	"fmt"
	"mime"
	"strings"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// encodedMessage is a message already in its protobuf wire encoding (built by
// responseEncoder). The codecs below pass its bytes through; every other message
// is marshalled as usual.
type encodedMessage struct {
	buf *[]byte // from mem.DefaultBufferPool
}

// grpcCodec is the grpc-go server's codec: the standard proto codec, plus
// pass-through of encodedMessage. The transport takes ownership of the buffer and
// returns it to the pool once the bytes are written.
type grpcCodec struct {
	proto encoding.CodecV2
}

func newGRPCCodec() grpcCodec { return grpcCodec{proto: encoding.GetCodecV2(grpcproto.Name)} }

func (c grpcCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return mem.BufferSlice{mem.NewBuffer(m.buf, mem.DefaultBufferPool())}, nil
	}
	return c.proto.Marshal(v)
}

func (c grpcCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if l, ok := v.(*lazyRequest); ok {
		l.data = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// lazyRequest is how the rpc table receives a request on the gRPC port: the
// codec only keeps its bytes, and decode parses them. grpc-go answers a codec
// failure itself, with INTERNAL; decoding here lets a request that does not
// parse be the client's fault, INVALID_ARGUMENT.
type lazyRequest struct {
	msg     proto.Message
	data    []byte
	decoded bool
	err     error
}

// decode parses the request once; a failure wraps errMalformed.
func (l *lazyRequest) decode() error {
	if !l.decoded {
		l.decoded = true
		if err := proto.Unmarshal(l.data, l.msg); err != nil {
			l.err = fmt.Errorf("%w: %s", errMalformed, quote(err.Error()))
		}
		l.data = nil
	}
	return l.err
}

func (c grpcCodec) Name() string { return grpcproto.Name }

// connectCodec replaces connect-go's binary proto codec on the telemetry handler:
// the same encoding, plus pass-through of encodedMessage (copied into connect's
// own envelope buffer; the sender keeps ownership of its buffer).
type connectCodec struct{}

func (connectCodec) Name() string { return "proto" }

func (connectCodec) IsBinary() bool { return true }

func (c connectCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

// MarshalAppend lets connect-go marshal into its pooled buffers.
func (connectCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	switch m := v.(type) {
	case *encodedMessage:
		return append(dst, *m.buf...), nil
	case proto.Message:
		return proto.MarshalOptions{}.MarshalAppend(dst, m)
	default:
		return nil, fmt.Errorf("marshal %T: not a protobuf message", v)
	}
}

func (connectCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("unmarshal into %T: not a protobuf message", v)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", v, err)
	}
	return nil
}

// connectUsesProto reports whether a connect-go request's Content-Type selects the
// binary proto codec ("application/connect+proto", "application/grpc",
// "application/grpc-web+proto", ...), so that pre-encoded messages may be sent.
func connectUsesProto(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(mt, '+'); i >= 0 {
		return mt[i+1:] == "proto"
	}
	return mt == "application/grpc" || mt == "application/grpc-web"
}
