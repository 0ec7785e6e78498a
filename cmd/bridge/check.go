package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

var errStop = errors.New("stop")

// cmdCheck validates a config file: keys, types, values, the mapping, and
// that the store can be read and its first product mapped. Every problem is
// printed with file:line; the exit code is 1 when there is any, including an
// error on the first product or a skipped row before it.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("check", stderr)
	a, err := openApp(ctx, fs, cfgPath, args, stderr, false)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg
	// The push targets: an unreadable SFTP key shows here, not at the
	// first push.
	if _, err := a.newPushRunner(nil); err != nil {
		return reportAssembly(err, stderr)
	}

	// Map the first product as a smoke test of the store and the mapping:
	// a typo in a column name shows here, not after the first full sync.
	var first bridge.Record
	var skipped []bridge.Problem
	err = a.source.ReadCatalog(ctx, func(r bridge.Record) error {
		first = r
		return errStop
	}, func(p bridge.Problem) { skipped = append(skipped, p) })
	if err != nil && !errors.Is(err, errStop) {
		fmt.Fprintf(stderr, "%s: store.%s: cannot read the catalog: %v\n", cfg.File, cfg.Store.Adapter, err)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "%s: config OK (mode %s, store %s, storage %s)\n", cfg.File, cfg.Mode, cfg.Store.Adapter, cfg.Storage.Driver)
	for _, p := range skipped {
		fmt.Fprintf(stdout, "warning: catalog %s\n", p)
	}
	if first.Key == "" {
		fmt.Fprintln(stdout, "warning: the catalog has no products")
		return nil
	}
	for _, u := range a.mapping.MissingPaths(first) {
		fmt.Fprintf(stdout, "warning: %s: %s reads %s, but the store record %q has no such field; it will be empty (fields: %s)\n",
			u.Origin, u.Field, u.Path, first.Key, fieldNames(first))
	}
	p, issues := a.mapping.Apply(first)
	issues = append(issues, feed.Validate(&p, a.settingsAt(time.Now()))...)
	fmt.Fprintf(stdout, "first product %q mapped: %d variant(s), %d issue(s)\n", p.ID, len(p.Variants), len(issues))
	errs := len(skipped)
	for _, is := range issues {
		fmt.Fprintf(stdout, "  %s\n", formatIssue(is))
		if is.Severity == bridge.SeverityError {
			errs++
		}
	}
	fmt.Fprintln(stdout, `run "bridge feed validate" for the whole catalog`)
	if errs > 0 {
		// A mapping that breaks the first product (a wrong column, a bad
		// template) almost always breaks them all.
		return exitError{1}
	}
	return nil
}

func formatIssue(is bridge.Issue) string {
	where := "product"
	if is.VariantID != "" {
		where = "variant " + is.VariantID
	}
	return fmt.Sprintf("%-7s %s: %s: %s", is.Severity, where, is.Field, is.Message)
}

// fieldNames lists a record's variant fields (in a CSV: the header), sorted.
func fieldNames(r bridge.Record) string {
	var names []string
	if len(r.Variants) > 0 {
		for k := range r.Variants[0] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
