package feed

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	bridge "github.com/acp-bridge/bridge"
)

// Default caps on what a Report keeps, so a catalog where everything is
// wrong still gives a report of bounded size; everything is still counted.
const (
	DefaultMaxProducts = 10_000
	maxIssuesKept      = 100 // per product
)

// Report sums up validation over a catalog for the shop admin: counts over
// every product, and the details of products that have issues (up to
// MaxProducts of them, in the order added). Add entries, then write it with
// WriteText or WriteJSON. The zero value is ready to use.
type Report struct {
	// MaxProducts caps the products whose details are kept; 0 means
	// DefaultMaxProducts.
	MaxProducts int `json:"-"`

	Products         int `json:"products"`
	Variants         int `json:"variants"`
	ValidVariants    int `json:"valid_variants"`
	ExcludedProducts int `json:"excluded_products"`
	// ProductsWithIssues counts products with at least one issue.
	ProductsWithIssues int            `json:"products_with_issues"`
	Errors             int            `json:"errors"`
	Warnings           int            `json:"warnings"`
	ErrorsByField      map[string]int `json:"errors_by_field"`
	WarningsByField    map[string]int `json:"warnings_by_field"`
	// SettingsIssues are the problems of the merchant settings (seller
	// name, policy links, currency …). Validate reports them on every
	// product; the report lists and counts each once.
	SettingsIssues []bridge.Issue `json:"settings_issues,omitempty"`
	// Details describes products with issues; OmittedProducts counts those
	// past MaxProducts whose details were dropped.
	Details         []ProductReport `json:"details"`
	OmittedProducts int             `json:"omitted_products"`
	// SkippedRows counts store rows that could not be read; Skipped lists
	// the first of them with their line numbers.
	SkippedRows int              `json:"skipped_rows"`
	Skipped     []bridge.Problem `json:"skipped,omitempty"`
}

// ProductReport is what validation found on one product.
type ProductReport struct {
	ProductID     string `json:"product_id"`
	Title         string `json:"title,omitempty"`
	SourceKey     string `json:"source_key,omitempty"`
	SourceLine    int    `json:"source_line,omitempty"`
	Excluded      bool   `json:"excluded"`
	Variants      int    `json:"variants"`
	ValidVariants int    `json:"valid_variants"`
	// Issues are the first issues found; OmittedIssues counts the rest.
	Issues        []bridge.Issue `json:"issues"`
	OmittedIssues int            `json:"omitted_issues,omitempty"`
}

// Add counts entry e and keeps its details if it has issues.
func (r *Report) Add(e bridge.CatalogEntry) {
	ok, filter := publishable(&e)
	valid := 0
	if ok {
		valid = validCount(&e, filter)
	}
	excluded := valid == 0
	r.Products++
	r.Variants += len(e.Product.Variants)
	r.ValidVariants += valid
	if excluded {
		r.ExcludedProducts++
	}
	own := 0 // issues of the product itself, not of the settings
	for _, is := range e.Issues {
		if isSettingsIssue(is) {
			if !slices.Contains(r.SettingsIssues, is) {
				r.SettingsIssues = append(r.SettingsIssues, is)
				r.count(is)
			}
			continue
		}
		own++
		r.count(is)
	}
	if own == 0 {
		return
	}
	r.ProductsWithIssues++
	limit := r.MaxProducts
	if limit <= 0 {
		limit = DefaultMaxProducts
	}
	if len(r.Details) >= limit {
		r.OmittedProducts++
		return
	}
	issues := make([]bridge.Issue, 0, min(own, maxIssuesKept))
	for _, is := range e.Issues {
		if len(issues) == maxIssuesKept {
			break
		}
		if !isSettingsIssue(is) {
			issues = append(issues, is) // copied: the report must not pin the entry
		}
	}
	r.Details = append(r.Details, ProductReport{
		ProductID:     e.Product.ID,
		Title:         e.Product.Title,
		SourceKey:     e.SourceKey,
		SourceLine:    e.SourceLine,
		Excluded:      excluded,
		Variants:      len(e.Product.Variants),
		ValidVariants: valid,
		Issues:        issues,
		OmittedIssues: own - len(issues),
	})
}

func (r *Report) count(is bridge.Issue) {
	if is.Severity == bridge.SeverityError {
		r.Errors++
		r.ErrorsByField = inc(r.ErrorsByField, is.Field)
	} else {
		r.Warnings++
		r.WarningsByField = inc(r.WarningsByField, is.Field)
	}
}

// isSettingsIssue reports whether is comes from the merchant settings
// rather than the product (see checkMerchant).
func isSettingsIssue(is bridge.Issue) bool {
	if is.VariantID != "" {
		return false
	}
	switch is.Field {
	case FieldSellerName, FieldSellerURL, FieldReturnPolicy, FieldPrivacyPolicy, FieldTermsOfService,
		FieldCurrency, FieldStoreCountry, FieldReturnWindow:
		return true
	}
	return false
}

func inc(m map[string]int, k string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[k]++
	return m
}

// WriteText writes the report for a person: the settings' problems, one
// block per product with issues, then a summary.
//
//	product tee-1 "Classic Tee" (line 12): left out of the feeds
//	  error    variant tee-1-s   price: price must be above zero
//	  warning  product           title: title is in ALL CAPS; …
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if len(r.SettingsIssues) > 0 {
		fmt.Fprintf(bw, "settings (these apply to every product)\n")
		for _, is := range r.SettingsIssues {
			fmt.Fprintf(bw, "  %-7s  %s: %s\n", is.Severity, is.Field, is.Message)
		}
		fmt.Fprintln(bw)
	}
	for i := range r.Details {
		d := &r.Details[i]
		fmt.Fprintf(bw, "product %s", d.ProductID)
		if d.ProductID == "" {
			fmt.Fprintf(bw, "(no id)")
		}
		if d.Title != "" {
			fmt.Fprintf(bw, " %q", d.Title)
		}
		switch {
		case d.SourceLine > 0:
			fmt.Fprintf(bw, " (line %d)", d.SourceLine)
		case d.SourceKey != "" && d.SourceKey != d.ProductID:
			fmt.Fprintf(bw, " (source %s)", d.SourceKey)
		}
		switch {
		case d.Excluded:
			fmt.Fprintf(bw, ": left out of the feeds\n")
		case d.ValidVariants < d.Variants:
			fmt.Fprintf(bw, ": %d of %d variants in the feeds\n", d.ValidVariants, d.Variants)
		default:
			fmt.Fprintf(bw, ": in the feeds, with advice\n")
		}
		width := 0
		for _, is := range d.Issues {
			width = max(width, len(issueWho(is)))
		}
		for _, is := range d.Issues {
			fmt.Fprintf(bw, "  %-7s  %-*s  %s: %s\n", is.Severity, width, issueWho(is), is.Field, is.Message)
		}
		if d.OmittedIssues > 0 {
			fmt.Fprintf(bw, "  … and %d more issues\n", d.OmittedIssues)
		}
		fmt.Fprintln(bw)
	}
	if r.OmittedProducts > 0 {
		fmt.Fprintf(bw, "… and %d more products with issues (details not kept)\n\n", r.OmittedProducts)
	}
	if r.SkippedRows > 0 {
		fmt.Fprintf(bw, "skipped store rows: %d\n", r.SkippedRows)
		for _, p := range r.Skipped {
			fmt.Fprintf(bw, "  %s\n", p)
		}
		if n := r.SkippedRows - len(r.Skipped); n > 0 {
			fmt.Fprintf(bw, "  … and %d more\n", n)
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "summary\n")
	fmt.Fprintf(bw, "  products:  %d, %d left out of the feeds\n", r.Products, r.ExcludedProducts)
	fmt.Fprintf(bw, "  variants:  %d, %d in the feeds\n", r.Variants, r.ValidVariants)
	fmt.Fprintf(bw, "  errors:    %d%s\n", r.Errors, byField(r.ErrorsByField))
	fmt.Fprintf(bw, "  warnings:  %d%s\n", r.Warnings, byField(r.WarningsByField))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("feed: write report: %w", err)
	}
	return nil
}

// byField lists counts most frequent first: " (price 3, gtin 1)".
func byField(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	type fc struct {
		field string
		n     int
	}
	var l []fc
	for f, n := range m {
		l = append(l, fc{f, n})
	}
	slices.SortFunc(l, func(a, b fc) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.field, b.field)
	})
	s := " ("
	for i, x := range l {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", x.field, x.n)
	}
	return s + ")"
}

// WriteJSON writes the report as one JSON object (the Report's fields).
func (r *Report) WriteJSON(w io.Writer) error {
	out := *r
	if out.ErrorsByField == nil {
		out.ErrorsByField = map[string]int{}
	}
	if out.WarningsByField == nil {
		out.WarningsByField = map[string]int{}
	}
	if out.Details == nil {
		out.Details = []ProductReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("feed: write report: %w", err)
	}
	return nil
}

// issueWho names what an issue is about: "product", or "variant X (line N)".
func issueWho(is bridge.Issue) string {
	switch {
	case is.VariantID == "":
		return "product"
	case is.Line > 0:
		return fmt.Sprintf("variant %s (line %d)", is.VariantID, is.Line)
	}
	return "variant " + is.VariantID
}
