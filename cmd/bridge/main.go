// Command bridge runs beside an online shop and sells its catalog through AI
// agents: it reads the store's catalog, maps it to product records, publishes
// product feeds and (in later versions) serves the ACP checkout API.
//
// Usage:
//
//	bridge serve            --config FILE   run the server
//	bridge check            --config FILE   validate a config; every problem with file:line
//	bridge feed build       --config FILE --out DIR [--format F ...]
//	bridge feed validate    --config FILE [--json]
//	bridge feed push        --config FILE [--target feed_api|sftp] [--all]
//	bridge feed status      --config FILE [--json]
//	bridge mapping preview  --config FILE --id ID
//	bridge orders list      --config FILE [--status S] [--json]
//	bridge orders show|retry|cancel --config FILE --id ID
//	bridge version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code and the message already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default: a second Ctrl-C ends
		// a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

const usage = `bridge sells a shop's catalog through AI agents.

Commands:
  serve             --config FILE                  run the HTTP server
  check             --config FILE                  validate a config file (and its mapping)
  feed build        --config FILE --out DIR        write feed files to a folder
  feed validate     --config FILE [--json]         report every product's feed problems
  feed push         --config FILE [--target T]     push the stored catalog to the agents now (feed.push; --all: every product)
  feed status       --config FILE [--json]         the last push of each target
  mapping preview   --config FILE --id ID          store record → mapped record → validation
  orders list       --config FILE [--status S]     orders (any status, or --status S), newest first
  orders show       --config FILE --id ID          an order: lines, history, outbox jobs
  orders retry      --config FILE --id ID          run an order's failed or dead jobs again
  orders cancel     --config FILE --id ID          cancel: release or refund the payment, tell the agent
  version                                          print the version

Run "bridge COMMAND -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	if (cmd == "feed" || cmd == "mapping" || cmd == "orders") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "feed build":
		return cmdFeedBuild(ctx, rest, stdout, stderr)
	case "feed validate":
		return cmdFeedValidate(ctx, rest, stdout, stderr)
	case "feed push":
		return cmdFeedPush(ctx, rest, stdout, stderr)
	case "feed status":
		return cmdFeedStatus(ctx, rest, stdout, stderr)
	case "mapping preview":
		return cmdMappingPreview(ctx, rest, stdout, stderr)
	case "orders list", "orders show", "orders retry", "orders cancel":
		return cmdOrders(ctx, strings.TrimPrefix(cmd, "orders "), rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "bridge %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "bridge: unknown command %q\n\n%s", strings.Join(args[:min(2, len(args))], " "), usage)
	return exitError{2}
}

// newFlags makes a command's flag set with the --config flag every command
// takes.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("bridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "", "path of the YAML config file (required)")
	return fs, cfg
}

// parseFlags parses args and insists on --config and the required flags.
func parseFlags(fs *flag.FlagSet, args []string, cfg *string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0}
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitError{2}
	}
	if *cfg == "" {
		fmt.Fprintf(fs.Output(), "%s: --config FILE is required\n", fs.Name())
		return exitError{2}
	}
	for _, name := range required {
		if f := fs.Lookup(name); f != nil && f.Value.String() == "" {
			fmt.Fprintf(fs.Output(), "%s: --%s is required: %s\n", fs.Name(), name, f.Usage)
			return exitError{2}
		}
	}
	return nil
}
