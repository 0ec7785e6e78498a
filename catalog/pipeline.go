// Package catalog runs the catalog flow: store records from an adapter are
// mapped to canonical products, validated against the feed rules, checked for
// duplicate ids, and handed on in source order — to a storage snapshot (Syncer)
// or straight to feed writers (`bridge feed build`). Memory stays bounded in
// catalog size: records stream through a small window of batches.
package catalog

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/mapping"
)

// MaxKeptProblems caps the skipped-row problems kept in a result; the count
// goes on. A catalog with a million broken rows needs a fix, not a list.
const MaxKeptProblems = 1000

// Pipeline maps and validates a store's records.
type Pipeline struct {
	Source   bridge.CatalogSource
	Mapping  *mapping.Mapping
	Settings feed.Settings
	// Workers map and validate in parallel; 0 means GOMAXPROCS.
	Workers int
}

// Result counts what a run saw.
type Result struct {
	Products      int
	Variants      int
	ValidVariants int
	Excluded      int
	Problems      []bridge.Problem
	ProblemCount  int
}

const batchSize = 256

type batch struct {
	recs []bridge.Record
	out  chan []bridge.CatalogEntry
}

// Run streams every record through mapping and validation and calls sink with
// each entry in source order. Invalid products are still passed on, with their
// issues, so reports and snapshots can show them; feed writers leave them out.
// A sink error or ctx cancellation stops the run.
func (p *Pipeline) Run(ctx context.Context, sink func(bridge.CatalogEntry) error) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	var res Result
	var mu sync.Mutex // guards res.Problems while the source reads
	skip := func(pr bridge.Problem) {
		mu.Lock()
		defer mu.Unlock()
		res.ProblemCount++
		if len(res.Problems) < MaxKeptProblems {
			res.Problems = append(res.Problems, pr)
		}
	}

	jobs := make(chan batch, workers)
	// order carries each batch's result channel in source order; its buffer
	// bounds how far workers may run ahead of the sink.
	order := make(chan chan []bridge.CatalogEntry, workers*2)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				entries := make([]bridge.CatalogEntry, len(b.recs))
				for i, r := range b.recs {
					entries[i] = p.entry(r)
				}
				b.out <- entries
			}
		}()
	}

	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		cur := batch{out: make(chan []bridge.CatalogEntry, 1)}
		flush := func() error {
			if len(cur.recs) == 0 {
				return nil
			}
			select {
			case order <- cur.out:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			cur = batch{out: make(chan []bridge.CatalogEntry, 1)}
			return nil
		}
		err := p.Source.ReadCatalog(ctx, func(r bridge.Record) error {
			cur.recs = append(cur.recs, r)
			if len(cur.recs) == batchSize {
				return flush()
			}
			return nil
		}, skip)
		if err == nil {
			err = flush()
		}
		readErr <- err
	}()

	var seed = maphash.MakeSeed()
	var products, variants idSet
	var sinkErr error
	for out := range order {
		var entries []bridge.CatalogEntry
		select {
		case entries = <-out:
		case <-ctx.Done():
		}
		if sinkErr != nil || ctx.Err() != nil {
			continue // drain so the reader can finish
		}
		for i := range entries {
			e := &entries[i]
			if e.Product.ID == "" {
				skip(bridge.Problem{Line: e.SourceLine, Key: e.SourceKey,
					Message: "the mapped product id is empty (mapping product.id); the product is left out"})
				continue
			}
			if !dedupe(e, seed, &products, &variants) {
				skip(bridge.Problem{Line: e.SourceLine, Key: e.SourceKey,
					Message: fmt.Sprintf("product id %q is already used by an earlier product; this one is left out (ids must be unique)", e.Product.ID)})
				continue
			}
			res.Products++
			res.Variants += len(e.Product.Variants)
			res.ValidVariants += e.ValidVariantCount()
			if e.Excluded() {
				res.Excluded++
			}
			if err := sink(*e); err != nil {
				sinkErr = err
				cancel()
				break
			}
		}
	}
	wg.Wait()
	err := <-readErr
	mu.Lock()
	defer mu.Unlock()
	switch {
	case sinkErr != nil:
		return res, sinkErr
	case err != nil:
		return res, err // the source's own error says what it read
	case ctx.Err() != nil:
		// Canceled after the source finished: entries were dropped while
		// draining, so the run is incomplete even though nothing failed.
		return res, context.Cause(ctx)
	}
	return res, nil
}

// entry maps and validates one record. A panic there (a bug, or a template
// function misbehaving on odd data) becomes an error on that product instead
// of taking the server down.
func (p *Pipeline) entry(r bridge.Record) (e bridge.CatalogEntry) {
	defer func() {
		if v := recover(); v != nil {
			e = bridge.CatalogEntry{Product: bridge.Product{ID: r.Key}, SourceKey: r.Key, SourceLine: r.Line,
				Issues: []bridge.Issue{{Severity: bridge.SeverityError, Field: "record",
					Message: fmt.Sprintf("internal error mapping this record (please report it): %v", v)}}}
		}
	}()
	prod, issues := p.Mapping.Apply(r)
	issues = append(issues, followUps(issues, feed.Validate(&prod, p.Settings))...)
	// Point variant issues at the variant's own row: a report that says
	// "line 2" for a problem on line 40 sends the admin to the wrong place.
	if len(issues) > 0 && len(r.VariantLines) == len(prod.Variants) {
		for i := range issues {
			for j, v := range prod.Variants {
				if issues[i].VariantID != "" && issues[i].VariantID == v.ID {
					issues[i].Line = r.VariantLines[j]
					break
				}
			}
		}
	}
	return bridge.CatalogEntry{Product: prod, Issues: issues, SourceKey: r.Key, SourceLine: r.Line}
}

// dedupe enforces unique ids across the catalog: agents buy by variant id, so
// two items with one id would sell the wrong thing. It reports false for a
// product whose id an earlier product used, and drops (with an error issue)
// variants whose id an earlier product used. Ids are kept as 64-bit hashes to
// hold a million in 8–16 MB (idSet); a collision (odds ~1e-8 at 1M ids) would only
// flag a false duplicate.
func dedupe(e *bridge.CatalogEntry, seed maphash.Seed, products, variants *idSet) bool {
	if e.Product.ID != "" && !products.add(maphash.String(seed, e.Product.ID)) {
		return false
	}
	kept := e.Product.Variants[:0]
	for _, v := range e.Product.Variants {
		if v.ID != "" && !variants.add(maphash.String(seed, v.ID)) {
			e.Issues = append(e.Issues, bridge.Issue{Severity: bridge.SeverityError, VariantID: v.ID, Field: "id",
				Message: fmt.Sprintf("variant id %q is already used (earlier in the catalog); this variant is left out", v.ID)})
			continue
		}
		kept = append(kept, v)
	}
	e.Product.Variants = kept
	return true
}

// followUps drops the validation issues that only repeat a mapping error: a
// price that could not be parsed is also "missing" and "without currency" to
// the validator, and an admin needs to read the cause once.
func followUps(mapped, validated []bridge.Issue) []bridge.Issue {
	if len(mapped) == 0 {
		return validated
	}
	type key struct{ variant, field string }
	failed := map[key]bool{}
	for _, is := range mapped {
		failed[key{is.VariantID, is.Field}] = true
		if is.Field == "price" || is.Field == "list_price" {
			failed[key{is.VariantID, feed.FieldCurrency}] = true
		}
	}
	out := validated[:0]
	for _, is := range validated {
		if !failed[key{is.VariantID, is.Field}] {
			out = append(out, is)
		}
	}
	return out
}
