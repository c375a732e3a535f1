package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// rpc is one RPC the server answers: its full name and its one implementation,
// with what each transport needs to call it. The table of rpcs (Server.rpcs) is
// the only place an RPC is wired; both transports are built from it, so neither
// has an adapter of its own per RPC.
type rpc struct {
	// procedure is the full method name, "/switchyard.v1.DeviceService/SendCommand".
	procedure string
	method    protoreflect.MethodDescriptor
	// grpcUnary or grpcStream is the grpc-go handler (one of them is set).
	grpcUnary  grpc.MethodHandler
	grpcStream grpc.StreamHandler
	// connect builds the connect-go handler for the HTTP port.
	connect func(opts ...connect.HandlerOption) http.Handler
}

// methodDescriptor finds the descriptor of a full method name in the global
// registry (every generated file registers itself there). It panics on an unknown
// name: the table is fixed at compile time, so that is a programming error.
func methodDescriptor(procedure string) protoreflect.MethodDescriptor {
	// "/pkg.Service/Method" -> "pkg.Service.Method"
	name := protoreflect.FullName(procedure[1:])
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			name = name[:i] + "." + name[i+1:]
			break
		}
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		panic(fmt.Sprintf("server: rpc %s: %v", procedure, err))
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		panic(fmt.Sprintf("server: rpc %s is not a method", procedure))
	}
	return md
}

// unary returns the rpc of a unary method implemented by fn.
func unary[Req, Resp any](procedure string, fn func(context.Context, *Req) (*Resp, error)) rpc {
	md := methodDescriptor(procedure)
	call := func(ctx context.Context, req any) (any, error) {
		resp, err := fn(ctx, req.(*Req))
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
	return rpc{
		procedure: procedure,
		method:    md,
		grpcUnary: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := receive(dec, req); err != nil {
				return nil, grpcError(err)
			}
			h := func(ctx context.Context, req any) (any, error) {
				resp, err := call(ctx, req)
				return resp, grpcError(err)
			}
			if ic == nil {
				return h(ctx, req)
			}
			return ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: procedure}, h)
		},
		connect: func(opts ...connect.HandlerOption) http.Handler {
			return connect.NewUnaryHandler(procedure, func(ctx context.Context, req *connect.Request[Req]) (*connect.Response[Resp], error) {
				resp, err := fn(ctx, req.Msg)
				if err != nil {
					return nil, connectError(err)
				}
				return connect.NewResponse(resp), nil
			}, append(opts, connect.WithSchema(md))...)
		},
	}
}

// serverStream returns the rpc of a server-streaming method implemented by fn.
func serverStream[Req, Resp any](procedure string, fn func(context.Context, *Req, streamOut[Resp]) error) rpc {
	md := methodDescriptor(procedure)
	return rpc{
		procedure: procedure,
		method:    md,
		grpcStream: func(_ any, ss grpc.ServerStream) error {
			req := new(Req)
			if err := receive(ss.RecvMsg, req); err != nil {
				return grpcError(err)
			}
			out := streamOut[Resp]{
				header:      func() error { return ss.SendHeader(nil) },
				send:        func(m *Resp) error { return ss.SendMsg(m) },
				sendEncoded: func(buf *[]byte) error { return ss.SendMsg(&encodedMessage{buf: buf}) },
				abort:       grpcAbort(ss),
			}
			if p, ok := peer.FromContext(ss.Context()); ok && p.Addr != nil {
				out.peer = p.Addr.String()
			}
			return grpcError(fn(ss.Context(), req, out))
		},
		connect: func(opts ...connect.HandlerOption) http.Handler {
			return connect.NewServerStreamHandler(procedure, func(ctx context.Context, req *connect.Request[Req], stream *connect.ServerStream[Resp]) error {
				// Send(nil) sends the headers only.
				out := streamOut[Resp]{header: func() error { return stream.Send(nil) }, send: stream.Send, peer: req.Peer().Addr, abort: httpAbort(ctx)}
				if connectUsesProto(req.Header().Get("Content-Type")) {
					out.sendEncoded = func(buf *[]byte) error {
						err := stream.Conn().Send(&encodedMessage{buf: buf}) // copies the bytes
						mem.DefaultBufferPool().Put(buf)
						return err
					}
				}
				return connectError(fn(ctx, req.Msg, out))
			}, append(opts, connect.WithSchema(md), connect.WithCodec(connectCodec{}))...)
		},
	}
}

// receive reads a gRPC request into req (a generated message) through recv
// (the handler's dec or the stream's RecvMsg), decoding it here (lazyRequest).
func receive(recv func(any) error, req any) error {
	l := &lazyRequest{msg: req.(proto.Message)}
	if err := recv(l); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) || errors.Is(err, errMalformed) {
			return err // the gate's validation (validatingStream) decoded it
		}
		return malformedRequest(err)
	}
	return l.decode()
}

// errMalformed marks a request the server could not decode.
var errMalformed = errors.New("malformed request")

// malformedRequest is the error for a request message that does not decode: the
// client's fault (InvalidArgument), not the server's. A status the transport set
// for another reason (a message over the size limit: ResourceExhausted) is kept.
func malformedRequest(err error) error {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Internal && st.Code() != codes.Unknown {
		return err
	}
	return fmt.Errorf("%w: %s", errMalformed, quote(err.Error()))
}

// registerGRPC registers the rpcs on a grpc-go server, one service description
// per service, with the file each service is declared in (for reflection).
func registerGRPC(srv *grpc.Server, rpcs []rpc) {
	descs := map[string]*grpc.ServiceDesc{}
	for _, r := range rpcs {
		svc := r.method.Parent().(protoreflect.ServiceDescriptor)
		name := string(svc.FullName())
		d := descs[name]
		if d == nil {
			d = &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil), Metadata: svc.ParentFile().Path()}
			descs[name] = d
		}
		if r.grpcUnary != nil {
			d.Methods = append(d.Methods, grpc.MethodDesc{MethodName: string(r.method.Name()), Handler: r.grpcUnary})
		} else {
			d.Streams = append(d.Streams, grpc.StreamDesc{StreamName: string(r.method.Name()), Handler: r.grpcStream, ServerStreams: true})
		}
	}
	names := make([]string, 0, len(descs))
	for n := range descs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		srv.RegisterService(descs[n], struct{}{})
	}
}

// registerConnect mounts the rpcs' connect-go handlers (Connect, gRPC and
// gRPC-Web protocols) on mux, each at its procedure's path.
func registerConnect(mux *http.ServeMux, rpcs []rpc, opts ...connect.HandlerOption) {
	for _, r := range rpcs {
		mux.Handle(r.procedure, r.connect(opts...))
	}
}

// streamOut is how the core writes a server stream, whatever the transport.
type streamOut[T any] struct {
	// header sends the response headers now. The core calls it once the stream is
	// established (its hub subscription or state watch exists), so a client that
	// waits for headers knows it will see everything that happens after.
	header func() error
	// send sends one message (and the headers, if not yet sent).
	send func(*T) error
	// sendEncoded, when not nil, sends one message already in its wire encoding
	// (a pooled buffer from responseEncoder, which it takes ownership of). It is
	// set where the transport sends binary protobuf; only Subscribe uses it.
	sendEncoded func(buf *[]byte) error
	// peer is the client's address, where the transport knows it (for logs and
	// the hub watchdog's status).
	peer string
	// abort, when not nil, ends the stream with err from another goroutine
	// than the handler's: a send stuck on a client that reads nothing returns
	// (abort.go). It may block for a moment: call it from a goroutine of its
	// own, not from one that must not wait.
	abort func(err error)
}

// streamContext returns a context that also ends, with cause errShuttingDown, when
// life ends. Call the returned function when the stream is over.
func streamContext(ctx, life context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(life, func() { cancel(errShuttingDown) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}
