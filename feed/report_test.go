package feed

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	bridge "github.com/acp-bridge/bridge"
)

func TestReport(t *testing.T) {
	s := usdSettings()
	var r Report
	for _, e := range entries(usdProducts(), s) {
		r.Add(e)
	}
	if r.Products != 6 || r.Variants != 10 || r.ValidVariants != 8 || r.ExcludedProducts != 1 {
		t.Errorf("counts: %d products, %d variants, %d valid, %d excluded", r.Products, r.Variants, r.ValidVariants, r.ExcludedProducts)
	}
	if r.ProductsWithIssues != 4 || len(r.Details) != 4 {
		t.Errorf("%d products with issues, %d details; want 4", r.ProductsWithIssues, len(r.Details))
	}
	if r.ErrorsByField[FieldBrand] != 1 || r.ErrorsByField[FieldPrice] != 1 || r.WarningsByField[FieldTitle] != 1 {
		t.Errorf("by field: errors %v warnings %v", r.ErrorsByField, r.WarningsByField)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		`product broken "N/A" (line 11): left out of the feeds`,
		`error    product  brand: brand is missing`,
		`product socks "Wool Socks" (line 14): 1 of 2 variants in the feeds`,
		`error    variant socks-l  price: price must be above zero`,
		`warning  variant poster-1  list_price: list price not above price; sale ignored`,
		`product poster "VINTAGE TRAVEL POSTER" (line 17): in the feeds, with advice`,
		"summary\n",
		"  products:  6, 1 left out of the feeds\n",
		"  variants:  10, 8 in the feeds\n",
		"  errors:    3 (brand 1, price 1, title 1)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Products != 6 || len(back.Details) != 4 || back.Details[0].Issues[0].Field == "" {
		t.Errorf("JSON report read back as %+v", back)
	}
}

// TestReportSettings: problems of the merchant settings come out of
// Validate on every product but are reported once.
func TestReportSettings(t *testing.T) {
	s := usdSettings()
	s.Merchant.Name = ""
	s.Merchant.Country = "usa"
	var r Report
	for _, e := range entries(usdProducts(), s) {
		r.Add(e)
	}
	if len(r.SettingsIssues) != 2 || r.ErrorsByField[FieldSellerName] != 1 || r.WarningsByField[FieldStoreCountry] != 1 {
		t.Errorf("settings issues %v, errors %v, warnings %v", r.SettingsIssues, r.ErrorsByField, r.WarningsByField)
	}
	if r.ExcludedProducts != 6 || r.ValidVariants != 0 || !r.HasErrors() {
		t.Errorf("a settings error must exclude everything: %d excluded, %d valid", r.ExcludedProducts, r.ValidVariants)
	}
	if r.ProductsWithIssues != 4 {
		t.Errorf("%d products with issues of their own, want 4", r.ProductsWithIssues)
	}
	for _, d := range r.Details {
		for _, is := range d.Issues {
			if isSettingsIssue(is) {
				t.Errorf("product %s repeats settings issue %v", d.ProductID, is)
			}
		}
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if out := text.String(); !strings.HasPrefix(out, "settings (these apply to every product)\n  error    seller_name: seller name") ||
		strings.Count(out, "seller_name") != 2 { // the block and the summary
		t.Errorf("text report:\n%s", out)
	}

	var clean Report
	clean.Add(entries(usdProducts()[:1], usdSettings())[0])
	if clean.HasErrors() {
		t.Error("a catalog with warnings only has errors")
	}
	clean.AddProblems([]bridge.Problem{{Line: 7, Message: "bad row"}}, 3)
	if !clean.HasErrors() || clean.SkippedRows != 3 {
		t.Error("skipped rows not reported")
	}
}

func TestReportBounded(t *testing.T) {
	r := Report{MaxProducts: 3}
	many := make([]bridge.Issue, 250)
	for i := range many {
		many[i] = bridge.Issue{Severity: bridge.SeverityWarning, VariantID: "v", Field: FieldTitle, Message: "m"}
	}
	for i := range 10 {
		r.Add(bridge.CatalogEntry{Product: bridge.Product{ID: "p", Variants: []bridge.Variant{{ID: "v"}}}, Issues: many, SourceLine: i})
	}
	r.Add(bridge.CatalogEntry{Product: bridge.Product{ID: "clean", Variants: []bridge.Variant{{ID: "c"}}}})
	if len(r.Details) != 3 || r.OmittedProducts != 7 || r.Warnings != 2500 || r.Products != 11 || r.ExcludedProducts != 0 {
		t.Errorf("details %d, omitted %d, warnings %d, products %d", len(r.Details), r.OmittedProducts, r.Warnings, r.Products)
	}
	if d := r.Details[0]; len(d.Issues) != maxIssuesKept || d.OmittedIssues != 150 {
		t.Errorf("kept %d issues, omitted %d", len(d.Issues), d.OmittedIssues)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "… and 150 more issues") || !strings.Contains(text.String(), "… and 7 more products") {
		t.Errorf("text report does not say what it left out:\n%s", text.String()[text.Len()-400:])
	}

	var empty Report
	var js bytes.Buffer
	if err := empty.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"details": []`) {
		t.Errorf("empty JSON report: %v\n%s", err, js.String())
	}
}
