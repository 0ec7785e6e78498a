package feed

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	bridge "github.com/acp-bridge/bridge"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// eachOf serves entries the way a CatalogStore does.
func eachOf(es []bridge.CatalogEntry) func(context.Context, func(bridge.CatalogEntry) error) error {
	return func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		for _, e := range es {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// readFeedFile returns a built file's text, gunzipped when it is a .gz.
func readFeedFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return text
}

func buildFiles(t *testing.T, es []bridge.CatalogEntry, s Settings) (string, BuildResult) {
	t.Helper()
	dir := t.TempDir()
	res, err := Build(context.Background(), dir, Formats(), s, eachOf(es))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return dir, res
}

// TestGolden builds every format from the fixture shops and compares the
// (gunzipped) files with testdata/golden/<shop>/; -update rewrites them.
func TestGolden(t *testing.T) {
	shops := []struct {
		name     string
		settings Settings
		products []bridge.Product
	}{
		{"usd", usdSettings(), usdProducts()},
		{"jpy", jpySettings(), jpyProducts()},
	}
	for _, shop := range shops {
		t.Run(shop.name, func(t *testing.T) {
			dir, res := buildFiles(t, entries(shop.products, shop.settings), shop.settings)
			for _, f := range res.Files {
				got := readFeedFile(t, filepath.Join(dir, filepath.FromSlash(f.Path)))
				golden := filepath.Join("testdata", "golden", shop.name, filepath.FromSlash(strings.TrimSuffix(f.Path, ".gz")))
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./feed -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", f.Path, golden, got, want)
				}
			}
		})
	}
}

// TestGoldenContent pins the rules the golden files show, so a careless
// -update cannot bless a regression.
func TestGoldenContent(t *testing.T) {
	s := usdSettings()
	dir, res := buildFiles(t, entries(usdProducts(), s), s)
	all := map[string]string{}
	for _, f := range res.Files {
		all[f.Path] = string(readFeedFile(t, filepath.Join(dir, f.Path)))
	}
	for path, text := range all {
		absent := []string{"broken", "socks-l", "Never shown"}
		if path != string(FormatACP) { // ACP carries the HTML form too
			absent = append(absent, "<b>", "x()")
		}
		for _, a := range absent {
			if strings.Contains(text, a) {
				t.Errorf("%s contains %q, which must not be published", path, a)
			}
		}
	}
	jsonl := all[string(FormatOpenAIJSONL)]
	for _, want := range []string{
		`"item_id":"tee-red-s"`, `"price":"24.99 USD","sale_price":"19.99 USD"`,
		`"availability":"pre_order","availability_date":"2027-01-15"`, `"availability":"backorder"`,
		`"availability":"out_of_stock"`, `"variant_dict":{"Color":"Red","Size":"S"}`,
		`"color":"Blue","size":"M"`, `"weight":"0.2","item_weight_unit":"kg"`, `"condition":"new"`,
		`"target_countries":["US","CA"]`, `"store_country":"US"`, `"return_deadline_in_days":30`,
		`"item_id":"socks-m"`, `"listing_has_variations":false`, `\u2028`,
	} {
		if !strings.Contains(jsonl, want) {
			t.Errorf("openai.jsonl lacks %s", want)
		}
	}
	if strings.Contains(jsonl, `"sale_price":"30.00 USD"`) {
		t.Error("a list price equal to the price became a sale")
	}
	seed := all[string(FormatSeedJSON)]
	for _, want := range []string{`"availability":"preorder","availability_date":"2027-01-15"`, `"inventory_quantity":0`, `"count":8}`} {
		if !strings.Contains(seed, want) {
			t.Errorf("feed.json lacks %s", want)
		}
	}
	mug := seed[strings.Index(seed, `"id":"mug-1"`):strings.Index(seed, `"id":"lamp-black"`)]
	if strings.Contains(mug, `"inventory_quantity"`) {
		t.Error("untracked stock got an inventory_quantity in feed.json")
	}
}

func TestGoldenJPY(t *testing.T) {
	s := jpySettings()
	dir, _ := buildFiles(t, entries(jpyProducts(), s), s)
	jsonl := string(readFeedFile(t, filepath.Join(dir, string(FormatOpenAIJSONL))))
	if !strings.Contains(jsonl, `"price":"1800 JPY","sale_price":"1500 JPY"`) {
		t.Errorf("JPY prices not formatted without decimals:\n%s", jsonl)
	}
	acp := string(readFeedFile(t, filepath.Join(dir, string(FormatACP))))
	if !strings.Contains(acp, `"price":{"amount":1500,"currency":"JPY"},"list_price":{"amount":1800,"currency":"JPY"}`) {
		t.Errorf("ACP JPY price wrong:\n%s", acp)
	}
}
