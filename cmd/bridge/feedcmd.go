package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// cmdFeedBuild runs the catalog straight from the store through mapping and
// validation into feed files: no database, constant memory, so it also
// serves as the offline export and the benchmark of the pipeline.
func cmdFeedBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("feed build", stderr)
	out := fs.String("out", "", "folder to write the feed files to")
	var formats multiFlag
	fs.Var(&formats, "format", "format to write (repeatable; default: feed.formats of the config, or all): "+formatNames())
	quiet := fs.Bool("quiet", false, "no progress bar")
	a, err := openApp(ctx, fs, cfgPath, args, stderr, false, "out")
	if err != nil {
		return err
	}
	defer a.close()
	fmts := a.formats
	if len(formats) > 0 {
		fmts = nil
		for _, name := range formats {
			f, ok := lookupFormat(name)
			if !ok {
				fmt.Fprintf(stderr, "bridge feed build: unknown format %q (formats: %s)\n", name, formatNames())
				return exitError{2}
			}
			fmts = append(fmts, f)
		}
	}

	bar := newProgress(stderr, *quiet)
	var variants atomic.Int64
	start := time.Now()
	s := a.settingsAt(start)
	var res feed.BuildResult
	var runErr error
	var pres = struct{ skipped, excluded int }{}
	res, err = feed.Build(ctx, *out, fmts, s, func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		r, err := a.pipeline(start).Run(ctx, func(e bridge.CatalogEntry) error {
			_ = bar.Add(len(e.Product.Variants))
			variants.Add(int64(len(e.Product.Variants)))
			return fn(e)
		})
		pres.skipped, pres.excluded = r.ProblemCount, r.Excluded
		runErr = err
		return err
	})
	_ = bar.Finish()
	if err != nil {
		if runErr != nil {
			return fmt.Errorf("feed build: %w", runErr)
		}
		return fmt.Errorf("feed build: %w", err)
	}
	elapsed := time.Since(start)
	n := variants.Load()
	fmt.Fprintf(stdout, "%d products, %d variants read in %s (%.0f variants/s); %d product(s) excluded, %d row(s) skipped\n",
		res.Entries, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), pres.excluded, pres.skipped)
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "  %-24s %8d variants %12d bytes\n", f.Path, f.Variants, f.Bytes)
	}
	if pres.excluded > 0 || pres.skipped > 0 {
		fmt.Fprintln(stdout, `run "bridge feed validate" to see why`)
	}
	return nil
}

// newProgress draws a bar on a terminal and stays silent elsewhere (CI logs,
// pipes). The total is unknown until the store has been read, so it counts.
func newProgress(w io.Writer, quiet bool) *progressbar.ProgressBar {
	if f, ok := w.(*os.File); quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return progressbar.DefaultSilent(-1)
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("mapping variants"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("variants"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}

// cmdFeedValidate prints the per-product report of the whole catalog. Exit
// code 1 when any product or variant is left out or any row was skipped, so
// scripts can gate on it.
func cmdFeedValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("feed validate", stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	a, err := openApp(ctx, fs, cfgPath, args, stderr, false)
	if err != nil {
		return err
	}
	defer a.close()
	var rep feed.Report
	p := a.pipeline(time.Now())
	res, err := p.Run(ctx, func(e bridge.CatalogEntry) error { rep.Add(e); return nil })
	if err != nil {
		return fmt.Errorf("feed validate: %w", err)
	}
	rep.AddProblems(res.Problems, res.ProblemCount)
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if rep.HasErrors() {
		return exitError{1}
	}
	return nil
}
