// Package cli is the terminal client of the switchyard binary: the client
// verbs (devices, send, watch, ...), which talk to a running server over gRPC
// (plaintext, or TLS with --tls-ca; a bearer token with --token or
// SWITCHYARD_TOKEN; a client certificate with --tls-cert and --tls-key), so
// that an operator can use Switchyard from a terminal. It is a client like the
// Python one: it knows the API's generated code and nothing of the server.
//
// This file holds what the verbs share: flags, the connection, one unary call
// or one stream per verb, and the output (aligned columns, one line per
// streamed item, or protojson with --json). verbs.go holds the verbs
// themselves. Run runs one; the binary's main only dispatches to it.
package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// defaultAddr is the server's default gRPC address, used when neither --addr
// nor SWITCHYARD_ADDR is given.
const defaultAddr = "127.0.0.1:7400"

// clientVerb is a verb that talks to a running server.
type clientVerb struct {
	// usage is the command line after "switchyard ", shown on usage errors.
	usage string
	// run registers the verb's own flags on c, parses args with c.parse and
	// makes its call.
	run func(c *client, args []string) error
}

// clientVerbs are the client verbs by name (see Run).
var clientVerbs = map[string]clientVerb{
	"devices": {"devices [flags]", cmdDevices},
	"send":    {"send [flags] (DEVICE COMMAND [ARG...] | --raw LINE DEVICE)", cmdSend},
	"abort":   {"abort [flags] DEVICE [REASON...]", cmdAbort},
	"latest":  {"latest [flags] [DEVICE-GLOB [CHANNEL-GLOB]]", cmdLatest},
	"watch":   {"watch [flags] [--channels GLOB,...] [--states] DEVICE-GLOB...", cmdWatch},
	"tree":    {"tree [flags]", cmdTree},
	"cluster": {"cluster [flags]", cmdCluster},
	"restart": {"restart [flags] PATH", cmdRestart},
	"events":  {"events [flags] [--snapshot] [--process GLOB]... [--kind KIND]...", cmdEvents},
	"alarms":  {"alarms [flags]", cmdAlarms},
	"ack":     {"ack [flags] --who NAME [--comment TEXT] DEVICE CHANNEL", cmdAck},
	"reload":  {"reload [flags] [--dry-run]", cmdReload},
	"config":  {"config [flags]", cmdConfig},
}

// IsVerb reports whether name is a client verb.
func IsVerb(name string) bool {
	_, ok := clientVerbs[name]
	return ok
}

// UsageError is a mistake in a verb's command line (a missing argument, an
// unknown flag): the binary prints it with the verb's usage line (Usage) and
// exits 2. The binary's other verbs use it too (NewUsageError).
type UsageError struct {
	err   error
	usage string
}

// NewUsageError is err, a mistake in the command line of the verb whose usage
// (after "switchyard ") is usage.
func NewUsageError(usage string, err error) *UsageError { return &UsageError{err: err, usage: usage} }

func (e *UsageError) Error() string { return e.err.Error() }

// Usage is the verb's command line after "switchyard ".
func (e *UsageError) Usage() string { return e.usage }

// client is one client verb's invocation: its flags, its output and, once a
// call is made, its connection.
type client struct {
	ctx     context.Context // ends on Ctrl-C: streams stop, unary calls are cancelled
	usage   string
	fs      *flag.FlagSet
	out     io.Writer
	addr    string
	timeout time.Duration
	json    bool
	conn    *grpc.ClientConn
	token   string
	tlsCA   string
	tlsCert string
	tlsKey  string
}

// Run runs a client verb (IsVerb) with its arguments until it is done or ctx
// ends (Ctrl-C: a stream then ends without an error), printing to stdout, and
// closes its connection. A bad command line is a *UsageError; -h is
// flag.ErrHelp, after the verb's usage went to stdout.
func Run(ctx context.Context, verb string, args []string, stdout io.Writer) error {
	v, ok := clientVerbs[verb]
	if !ok {
		return &UsageError{err: fmt.Errorf("unknown client verb %q", verb), usage: verb}
	}
	c := &client{ctx: ctx, usage: v.usage, out: stdout, fs: flag.NewFlagSet(verb, flag.ContinueOnError)}
	c.fs.SetOutput(io.Discard) // parse reports errors, with the usage line
	addr := os.Getenv("SWITCHYARD_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	c.fs.StringVar(&c.addr, "addr", addr, "server gRPC address (default $SWITCHYARD_ADDR, else "+defaultAddr+")")
	c.fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of a unary call")
	c.fs.BoolVar(&c.json, "json", false, "print each response message as one line of protojson")
	c.fs.StringVar(&c.token, "token", os.Getenv("SWITCHYARD_TOKEN"), "bearer token (default $SWITCHYARD_TOKEN)")
	c.fs.StringVar(&c.tlsCA, "tls-ca", "", "connect with TLS, trusting this CA certificate (PEM)")
	c.fs.StringVar(&c.tlsCert, "tls-cert", "", "client certificate (PEM) for an mTLS identity; with --tls-key")
	c.fs.StringVar(&c.tlsKey, "tls-key", "", "the client certificate's key (PEM)")
	err := v.run(c, args)
	if c.conn != nil {
		c.conn.Close()
	}
	return err
}

// parse parses the verb's flags and returns the positional arguments, checking
// that there are from least to most of them (most < 0: no upper bound).
func (c *client) parse(args []string, least, most int) ([]string, error) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(c.out, "usage: switchyard %s\n\nflags:\n", c.usage)
			c.fs.SetOutput(c.out)
			c.fs.PrintDefaults()
		}
		return nil, c.usageErr("%w", err)
	}
	pos := c.fs.Args()
	switch {
	case len(pos) < least:
		return nil, c.usageErr("missing argument")
	case most >= 0 && len(pos) > most:
		return nil, c.usageErr("unexpected argument %q", pos[most])
	}
	return pos, nil
}

// usageErr is a usage error of this verb. Help is not one: it stays
// flag.ErrHelp, so that run exits 0.
func (c *client) usageErr(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{err: err, usage: c.usage}
}

// dial makes the connection: plaintext gRPC with the Python client's keepalive
// (a ping every 30 s, 10 s to answer; the server allows one every 10 s), so that
// a stream from a server that vanished ends instead of hanging.
func (c *client) dial() error {
	creds := insecure.NewCredentials()
	if c.tlsCA != "" || c.tlsCert != "" {
		cfg, err := clientTLS(c.tlsCA, c.tlsCert, c.tlsKey)
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "x-switchyard-client", "switchyard-cli"), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, "x-switchyard-client", "switchyard-cli"), desc, cc, method, opts...)
		}),
	}
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(c.token)))
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

// bearer sends a token as "authorization: Bearer TOKEN" on every call; also
// over plaintext, which the server allows on loopback only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// clientTLS is the TLS configuration of --tls-ca, --tls-cert and --tls-key.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// call makes one unary call under the --timeout deadline and prints its
// response with human, or as JSON.
func call[Resp proto.Message](c *client, rpc func(context.Context) (Resp, error), human func(Resp)) error {
	if err := c.dial(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	resp, err := rpc(ctx)
	if err != nil {
		return statusMessage(err)
	}
	return c.print(resp, func() { human(resp) })
}

// watch opens a server stream and prints every response with human, or as
// JSON, until the stream fails or c.ctx ends (which is not an error).
func watch[Resp any, PResp interface {
	*Resp
	proto.Message
}](c *client, open func(context.Context) (grpc.ServerStreamingClient[Resp], error), human func(PResp)) error {
	if err := c.dial(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stream, err := open(ctx)
	for err == nil {
		var resp *Resp
		if resp, err = stream.Recv(); err == nil {
			err = c.print(PResp(resp), func() { human(resp) })
		}
	}
	switch {
	case c.ctx.Err() != nil:
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("the server ended the stream")
	}
	return statusMessage(err)
}

// statusMessage is the server's status message of a failed call.
func statusMessage(err error) error {
	return errors.New(status.Convert(err).Message())
}

// print prints a response with human, or with --json as one line of protojson.
func (c *client) print(m proto.Message, human func()) error {
	if !c.json {
		human()
		return nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var line bytes.Buffer // protojson varies its spacing on purpose; compact is stable
	if err := json.Compact(&line, b); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = c.out.Write(line.Bytes())
	return err
}

// table prints rows as aligned columns, without trailing blanks. Cells are
// cut to their first line.
func (c *client) table(rows [][]string) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i, cell := range row {
			if i > 0 {
				tw.Write([]byte{'\t'})
			}
			io.WriteString(tw, oneLine(cell))
		}
		tw.Write([]byte{'\n'})
	}
	tw.Flush()
	for line := range strings.Lines(b.String()) {
		fmt.Fprintln(c.out, strings.TrimRight(line, " \n"))
	}
}

// stringList is a flag that may be repeated, each time with one value or
// several separated by commas.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, strings.Split(s, ",")...)
	return nil
}

// oneLine is the first line of s, with tabs as spaces and "…" when lines were cut.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimRight(s[:i], "\r") + " …"
	}
	return strings.ReplaceAll(s, "\t", " ")
}

// enumName is an enum value's name without its type's prefix: "CONNECTED" for
// DEVICE_STATE_CONNECTED.
func enumName(e fmt.Stringer, prefix string) string {
	return strings.TrimPrefix(e.String(), prefix)
}

// formatValue prints a value: floats as short as they round-trip, strings
// quoted only when they hold blanks (or are empty), "-" when there is none.
func formatValue(v *svv1.Value) string {
	switch k := v.GetKind().(type) {
	case *svv1.Value_DoubleValue:
		return strconv.FormatFloat(k.DoubleValue, 'g', -1, 64)
	case *svv1.Value_IntValue:
		return strconv.FormatInt(k.IntValue, 10)
	case *svv1.Value_BoolValue:
		return strconv.FormatBool(k.BoolValue)
	case *svv1.Value_StringValue:
		if s := k.StringValue; s != "" && !strings.ContainsAny(s, " \t\n") {
			return s
		}
		return strconv.Quote(k.StringValue)
	default:
		return "-"
	}
}

// clock is the local time of day of a timestamp in ns since the Unix epoch.
func clock(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }

// age is how long ago a timestamp was, rounded to what a reader can use.
func age(ns int64) string {
	d := time.Since(time.Unix(0, ns))
	switch {
	case d < time.Second && d > -time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// lossReport prints a line when a stream's loss counters (which only grow)
// grew since the last response.
type lossReport struct{ last [2]uint64 }

func (l *lossReport) update(w io.Writer, what string, dropped, squashed uint64) {
	now := [2]uint64{dropped, squashed}
	if now == l.last {
		return
	}
	l.last = now
	line := fmt.Sprintf("%s lost so far: %d %s dropped", clock(time.Now().UnixNano()), dropped, what)
	if squashed > 0 {
		line += fmt.Sprintf(", %d squashed to later ones", squashed)
	}
	fmt.Fprintln(w, line+" (reading too slowly)")
}
