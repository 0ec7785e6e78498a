package feed

import (
	bridge "github.com/acp-bridge/bridge"
)

// AddProblems records store rows the source could not read and skipped
// (kept is capped by the caller; total counts them all).
func (r *Report) AddProblems(kept []bridge.Problem, total int) {
	r.SkippedRows += total
	r.Skipped = append(r.Skipped, kept...)
}

// HasErrors reports whether anything was left out: a product or variant with
// an error, or a skipped store row. Scripts gate on it.
func (r *Report) HasErrors() bool {
	return r.Errors > 0 || r.ExcludedProducts > 0 || r.SkippedRows > 0 || r.ValidVariants < r.Variants
}
