// Command switchyard is the one binary of Switchyard: the server, the demo, the
// instrument simulator and the configuration checker.
//
//	switchyard serve --config FILE     run the server on a configuration file
//	switchyard demo [--questdb ADDR]   simulate 24 instruments and serve them
//	switchyard sim [flags]             run simulated instruments only
//	switchyard check-config FILE       print every problem of a configuration file
//	switchyard bench SCENARIO...       run benchmark scenarios, print a table
//
// This file is wiring only: the verbs parse flags and call into the packages.
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
)

const usage = `usage: switchyard <verb> [flags]

verbs:
  serve --config FILE     run the server on a configuration file
  demo [--questdb ADDR]   simulate 24 instruments and serve them (archives to QuestDB
                          when --questdb or SWITCHYARD_QUESTDB is set)
  sim [flags]             run simulated instruments only (see switchyard sim -h)
  check-config FILE       print every problem of a configuration file
  bench SCENARIO...       run benchmark scenarios and print a table (see switchyard bench -h)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes a verb and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchyard: unknown verb %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchyard %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
