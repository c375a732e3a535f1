// Command switchyard is the one binary of Switchyard: the server, the demo, the
// instrument simulator, the configuration checker and a terminal client.
//
//	switchyard serve --config FILE     run the server on a configuration file
//	switchyard demo [--questdb ADDR]   simulate 24 instruments and serve them
//	switchyard sim [flags]             run simulated instruments only
//	switchyard check-config FILE       print every problem of a configuration file
//	switchyard bench SCENARIO...       run benchmark scenarios, print a table
//
// The client verbs call a running server's gRPC API (--addr, default
// $SWITCHYARD_ADDR, else 127.0.0.1:7400) and print aligned columns, one line per
// streamed item, or protojson lines with --json (package cli, in internal/cli):
//
//	switchyard devices                       the devices and their connection states
//	switchyard send DEVICE COMMAND [ARG...]  send a command, print its reply
//	switchyard abort DEVICE [REASON...]      abort the command in progress on a device
//	switchyard latest [DEVICE [CHANNEL]]     the latest sample of each channel
//	switchyard watch DEVICE-GLOB...          stream samples until Ctrl-C
//	switchyard tree                          the supervision tree
//	switchyard cluster                       the cluster: nodes, owners, lag
//	switchyard restart PATH                  restart a process ("devices/psu-05")
//	switchyard events                        stream supervision events until Ctrl-C
//	switchyard alarms                        the active alarms
//	switchyard ack [--who NAME] DEVICE CHAN  acknowledge an alarm
//	switchyard reload [--dry-run]            reload the server's configuration file
//	switchyard config                        the configuration in force
//	switchyard token new --name N --role R  make a bearer token and its tokens-file entry
//
// The package is wiring and verbs only: each verb parses its flags and builds
// and runs what the packages provide (app.go states the server's start and
// shutdown order); the terminal client is package cli.
// Exit codes: 0 done (a client verb's stream ended by Ctrl-C too), 1 failed, 2 no
// or an unknown verb, or a client verb's bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard/switchyard/cmd/switchyard/internal/cli"
)

const usage = `usage: switchyard <verb> [flags]

verbs:
  serve --config FILE     run the server on a configuration file
  demo [--questdb ADDR]   simulate 24 instruments and serve them (archives to QuestDB
                          when --questdb or SWITCHYARD_QUESTDB is set); --cluster N
                          runs N node processes over an embedded NATS JetStream
  sim [flags]             run simulated instruments only (see switchyard sim -h)
  check-config FILE       print every problem of a configuration file
  bench SCENARIO...       run benchmark scenarios and print a table (see switchyard bench -h)
  token new --name NAME --role ROLE
                          print a new bearer token, then its entry for the tokens file

client verbs, against a running server (flags go before arguments: --addr HOST:PORT,
default $SWITCHYARD_ADDR, else 127.0.0.1:7400; --timeout D for unary calls, default
10s; --json prints each response as one line of protojson; --token T, default
$SWITCHYARD_TOKEN, a bearer token; --tls-ca FILE connects with TLS, --tls-cert and
--tls-key add a client certificate; see switchyard VERB -h):
  devices                            the devices and their connection states
  send DEVICE COMMAND [ARG...]       send a named command; print its reply and values
  send --raw LINE DEVICE             send a line as is (--cmd-timeout D: the device's deadline)
  abort DEVICE [REASON...]           abort the command in progress on a device
  latest [DEVICE-GLOB [CHANNEL-GLOB]]
                                     the latest sample of each channel
  watch [--channels GLOB,...] [--states] DEVICE-GLOB...
                                     stream samples (and device states) until Ctrl-C
  tree                               the supervision tree (in a cluster: of the node asked)
  cluster                            the cluster: nodes, each device's owner, lag
  restart PATH                       restart a process of the tree, e.g. devices/psu-05
  events [--snapshot] [--process GLOB]... [--kind KIND]...
                                     stream supervision events until Ctrl-C
  alarms                             the active alarms
  ack [--who NAME] [--comment TEXT] DEVICE CHANNEL
                                     acknowledge an alarm
  reload [--dry-run]                 reload the server's configuration file (admin); print
                                     what changed, or every problem of a refused file
  config                             the configuration in force: file, hash, when loaded
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes a verb until it is done or the process is interrupted, and
// returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCtx(ctx, args, stdout, stderr)
}

// runCtx executes a verb until it is done or ctx ends, and returns the exit code.
func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], log)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, log)
	case "sim":
		err = cmdSim(ctx, args[1:], stdout, log)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "token":
		err = cmdToken(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		if !cli.IsVerb(args[0]) {
			fmt.Fprintf(stderr, "switchyard: unknown verb %q\n\n%s", args[0], usage)
			return 2
		}
		err = cli.Run(ctx, args[0], args[1:], stdout)
	}
	var usageErr *cli.UsageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "switchyard %s: %v\nusage: switchyard %s\n", args[0], err, usageErr.Usage())
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchyard %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
