package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/cmd/switchyard/internal/cli"
)

// cmdToken runs "switchyard token new --name NAME --role ROLE": it prints a new
// token on the first line and, after it, the entry to add to the tokens file
// (which keeps only the token's hash).
func cmdToken(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return cli.NewUsageError("token new --name NAME --role viewer|operator|admin", errors.New("want \"new\""))
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the identity's name (recorded in audit records and as who)")
	role := fs.String("role", "", "viewer, operator or admin")
	usage := "token new --name NAME --role viewer|operator|admin"
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: switchyard %s\n\nflags:\n", usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return cli.NewUsageError(usage, err)
	}
	if *name == "" || fs.NArg() > 0 {
		return cli.NewUsageError(usage, errors.New("--name NAME is required, and nothing else"))
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return cli.NewUsageError(usage, fmt.Errorf("--role: %w", err))
	}
	tok, err := auth.NewToken()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stdout, "# add to the tokens file (auth.tokens_file), under tokens:\n%s", auth.Entry(*name, r, auth.HashToken(tok)))
	return nil
}
