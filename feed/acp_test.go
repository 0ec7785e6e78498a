package feed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/acpspec"
)

const acpVersion = "2026-04-17"

// checkACPFiles validates every line of acp/products.jsonl.gz against the
// official ACP Product schema and metadata.json against FeedMetadata.
func checkACPFiles(t *testing.T, dir string, wantProducts int) {
	t.Helper()
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(readFeedFile(t, filepath.Join(dir, string(FormatACP)))))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines++
		if err := acpspec.Validate(acpVersion, "schema.feed.json", "Product", sc.Bytes()); err != nil {
			t.Fatalf("line %d is not a valid ACP Product: %v\n%s", lines, err, sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != wantProducts {
		t.Errorf("products.jsonl has %d lines, want %d", lines, wantProducts)
	}
	meta := readFeedFile(t, filepath.Join(dir, FileACPMetadata))
	if err := acpspec.Validate(acpVersion, "schema.feed.json", "FeedMetadata", meta); err != nil {
		t.Errorf("metadata.json is not valid FeedMetadata: %v\n%s", err, meta)
	}
}

func TestACPSchemaFixtures(t *testing.T) {
	for name, c := range map[string]struct {
		s    Settings
		ps   []bridge.Product
		want int
	}{
		"usd": {usdSettings(), usdProducts(), 5},
		"jpy": {jpySettings(), jpyProducts(), 1},
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := buildFiles(t, entries(c.ps, c.s), c.s)
			checkACPFiles(t, dir, c.want)
		})
	}
}

// TestACPSchemaGenerated checks a larger generated catalog with awkward
// text (HTML-only descriptions, escapes, invalid UTF-8, many options).
func TestACPSchemaGenerated(t *testing.T) {
	s := usdSettings()
	n := 600
	if testing.Short() {
		n = 100
	}
	ps := make([]bridge.Product, n)
	for i := range ps {
		p := syntheticProduct(i)
		switch i % 5 {
		case 1:
			p.Description = bridge.Description{HTML: "<div>Line\u2029two \"q\" \\ \x01 <br>&lt;tag&gt; &#x1F600;</div>"}
		case 2:
			p.Title = "Caf\xe9 au lait \u2028 mug"
			p.Variants[1].Options = append(p.Variants[1].Options, bridge.Option{Name: "Material", Value: "Ste\"el"}, bridge.Option{Name: "", Value: "x"})
			p.Variants[2].Availability = bridge.Unknown
		case 3:
			p.Media = append(p.Media, bridge.Media{URL: "https://cdn.shop.example.com/untyped.png", AltText: "alt \t text"})
			p.Variants[0].Description = bridge.Description{Plain: "Own text", HTML: "<p>Own</p>"}
			p.Variants[1].Condition = "Refurbished"
		case 4:
			p.Variants[2].Price.Amount = 0 // invalid: left out
		}
		ps[i] = p
	}
	dir, res := buildFiles(t, entries(ps, s), s)
	fr, _ := res.File(FormatACP)
	if fr.Products != n || fr.Variants != 3*n-n/5 {
		t.Errorf("ACP wrote %d products, %d variants; want %d, %d", fr.Products, fr.Variants, n, 3*n-n/5)
	}
	checkACPFiles(t, dir, n)
}

// TestACPMetadataEdge leaves out what the schema would reject.
func TestACPMetadataEdge(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteACPMetadata(&buf, Settings{Merchant: bridge.Merchant{Country: "usa"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "{\"id\":\"feed_default\"}\n"; got != want {
		t.Errorf("metadata = %q, want %q", got, want)
	}
	if err := acpspec.Validate(acpVersion, "schema.feed.json", "FeedMetadata", buf.Bytes()); err != nil {
		t.Error(err)
	}
}

// TestACPRetraction: the withdrawal of a product names every variant the
// product publishes, unavailable and discontinued, in a valid Product; a
// product that publishes nothing has none.
func TestACPRetraction(t *testing.T) {
	s := usdSettings()
	enc := NewACPEncoder(s)
	p := syntheticProduct(1)
	p.Title = "Caf\xe9 \"mug\""
	p.Variants[2].Price.Amount = 0 // invalid: not published, not withdrawn
	es := entries([]bridge.Product{p}, s)
	b := enc.AppendRetraction(nil, &es[0])
	if err := acpspec.Validate(acpVersion, "schema.feed.json", "Product", b); err != nil {
		t.Fatalf("retraction is not a valid Product: %v\n%s", err, b)
	}
	var got struct {
		ID       string `json:"id"`
		Variants []struct {
			ID           string `json:"id"`
			Availability struct {
				Available bool   `json:"available"`
				Status    string `json:"status"`
			} `json:"availability"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != p.ID || len(got.Variants) != 2 || got.Variants[0].ID != p.Variants[0].ID {
		t.Fatalf("retraction: %s", b)
	}
	for _, v := range got.Variants {
		if v.Availability.Available || v.Availability.Status != "discontinued" {
			t.Fatalf("variant %s withdrawn as %+v", v.ID, v.Availability)
		}
	}
	excluded := es[0]
	excluded.Issues = append(excluded.Issues, bridge.Issue{Severity: bridge.SeverityError, Field: "title", Message: "x"})
	if b := enc.AppendRetraction([]byte("keep"), &excluded); string(b) != "keep" {
		t.Fatalf("retraction of an excluded product: %s", b)
	}
}
