package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"

	bridge "github.com/acp-bridge/bridge"
)

// The benchmarks run on synthetic entries of 1 product : 3 variants with
// realistic text (a ~90-rune title, a ~700-rune description, 4 images,
// options, a sale and a GTIN on one variant). ns/variant is the figure to
// hold against the budget: a million variants through map, validate and
// every writer within 15 s on two cores.
//
//	go test ./feed -run '^$' -bench . -benchtime 20000x

var benchSet = sync.OnceValue(func() []bridge.CatalogEntry { return syntheticEntries(2000, usdSettings()) })

const benchVariantsPerEntry = 3

func reportPerVariant(b *testing.B, ops int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops*benchVariantsPerEntry), "ns/variant")
}

// plainBytesPerEntry is the uncompressed output per entry, for MB/s.
func plainBytesPerEntry(b *testing.B, f Format, es []bridge.CatalogEntry, s Settings) int64 {
	b.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(f, &buf, s)
	if err != nil {
		b.Fatal(err)
	}
	for i := range es {
		if err := w.Write(&es[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	n := int64(buf.Len())
	if f != FormatSeedJSON {
		zr, err := gzip.NewReader(&buf)
		if err != nil {
			b.Fatal(err)
		}
		if n, err = io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
	return n / int64(len(es))
}

func benchWrite(b *testing.B, f Format) {
	s := usdSettings()
	es := benchSet()
	b.SetBytes(plainBytesPerEntry(b, f, es, s))
	b.ReportAllocs()
	w, err := NewWriter(f, io.Discard, s)
	if err != nil {
		b.Fatal(err)
	}
	ops := 0
	for b.Loop() {
		if err := w.Write(&es[ops%len(es)]); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	reportPerVariant(b, ops)
}

func BenchmarkWriteOpenAIJSONL(b *testing.B) { benchWrite(b, FormatOpenAIJSONL) }
func BenchmarkWriteOpenAICSV(b *testing.B)   { benchWrite(b, FormatOpenAICSV) }
func BenchmarkWriteOpenAITSV(b *testing.B)   { benchWrite(b, FormatOpenAITSV) }
func BenchmarkWriteACP(b *testing.B)         { benchWrite(b, FormatACP) }
func BenchmarkWriteSeedJSON(b *testing.B)    { benchWrite(b, FormatSeedJSON) }

func BenchmarkValidate(b *testing.B) {
	s := usdSettings()
	es := benchSet()
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		if is := Validate(&es[ops%len(es)].Product, s); len(is) != 0 {
			b.Fatal(is)
		}
		ops++
	}
	reportPerVariant(b, ops)
}

// BenchmarkBuild writes every format of a 60,000-variant catalog through
// Build, as a sync does (including fsync and rename): ns/variant is wall
// time for all five files, which Build encodes concurrently.
func BenchmarkBuild(b *testing.B) {
	s := usdSettings()
	es := benchSet()
	const passes = 10
	each := func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		for range passes {
			for _, e := range es {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	dir := b.TempDir()
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		if _, err := Build(context.Background(), dir, Formats(), s, each); err != nil {
			b.Fatal(err)
		}
		ops += passes * len(es)
	}
	reportPerVariant(b, ops)
}

// g2JSONRow is an OpenAI flat row for encoding/json, to compare with the
// hand-written appender in BenchmarkEncodeVariant.
type g2JSONRow struct {
	IsEligibleSearch     bool              `json:"is_eligible_search"`
	IsEligibleCheckout   bool              `json:"is_eligible_checkout"`
	ItemID               string            `json:"item_id"`
	Title                string            `json:"title"`
	Description          string            `json:"description"`
	URL                  string            `json:"url"`
	Brand                string            `json:"brand"`
	GTIN                 string            `json:"gtin,omitempty"`
	MPN                  string            `json:"mpn,omitempty"`
	Condition            string            `json:"condition,omitempty"`
	ProductCategory      string            `json:"product_category,omitempty"`
	ImageURL             string            `json:"image_url"`
	AdditionalImageURLs  string            `json:"additional_image_urls,omitempty"`
	Price                string            `json:"price"`
	SalePrice            string            `json:"sale_price,omitempty"`
	Availability         string            `json:"availability"`
	AvailabilityDate     string            `json:"availability_date,omitempty"`
	GroupID              string            `json:"group_id"`
	ListingHasVariations bool              `json:"listing_has_variations"`
	VariantDict          map[string]string `json:"variant_dict,omitempty"`
	ItemGroupTitle       string            `json:"item_group_title,omitempty"`
	Color                string            `json:"color,omitempty"`
	Size                 string            `json:"size,omitempty"`
	Weight               string            `json:"weight,omitempty"`
	SellerName           string            `json:"seller_name"`
	SellerURL            string            `json:"seller_url"`
	SellerPrivacyPolicy  string            `json:"seller_privacy_policy,omitempty"`
	SellerTOS            string            `json:"seller_tos,omitempty"`
	ReturnPolicy         string            `json:"return_policy"`
	ReturnDeadlineInDays int               `json:"return_deadline_in_days,omitempty"`
	TargetCountries      []string          `json:"target_countries"`
	StoreCountry         string            `json:"store_country"`
}

// BenchmarkEncodeVariant compares encoding one flat row (no gzip) with the
// appender against encoding/json; it is why the writers append by hand.
func BenchmarkEncodeVariant(b *testing.B) {
	s := usdSettings().withDefaults()
	es := benchSet()
	b.Run("appender", func(b *testing.B) {
		fw := newFlatWriter(io.Discard, s, flatJSONL)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := &es[i%len(es)]
			p := &e.Product
			v := &p.Variants[i%3]
			fw.row.fill(p, v, p.Description.Plain)
			fw.row.ownDesc = true // measure the description's encoding too
			fw.buf = fw.appendJSON(fw.buf[:0], p, v, true)
			i++
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		m := s.Merchant
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := &es[i%len(es)]
			p := &e.Product
			v := &p.Variants[i%3]
			dict := map[string]string{}
			for _, o := range v.Options {
				dict[o.Name] = o.Value
			}
			row := g2JSONRow{
				IsEligibleSearch: v.EligibleSearch, ItemID: v.ID, Title: v.Title, Description: p.Description.Plain,
				URL: v.URL, Brand: p.Brand, GTIN: v.GTIN, Condition: v.Condition, ProductCategory: p.Category,
				ImageURL: v.Media[0].URL, AdditionalImageURLs: p.Media[0].URL + "," + p.Media[1].URL + "," + p.Media[2].URL,
				Price: v.Price.String(), Availability: "in_stock", GroupID: p.ID, ListingHasVariations: true, VariantDict: dict,
				ItemGroupTitle: p.Title, Color: v.Options[0].Value, Size: v.Options[1].Value, Weight: v.Weight + " " + v.WeightUnit,
				SellerName: m.Name, SellerURL: m.URL, SellerPrivacyPolicy: m.PrivacyPolicyURL, SellerTOS: m.TermsURL,
				ReturnPolicy: m.ReturnPolicyURL, ReturnDeadlineInDays: m.ReturnWindowDays, TargetCountries: s.TargetCountries,
				StoreCountry: m.Country,
			}
			buf.Reset()
			if err := enc.Encode(&row); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkGzipLevels compresses the same JSONL rows at the levels worth
// considering and reports the compression ratio: the measurement behind
// gzipLevel.
func BenchmarkGzipLevels(b *testing.B) {
	s := usdSettings().withDefaults()
	es := benchSet()
	fw := newFlatWriter(io.Discard, s, flatJSONL)
	var raw []byte
	for i := range es {
		p := &es[i].Product
		for j := range p.Variants {
			fw.row.fill(p, &p.Variants[j], p.Description.Plain)
			fw.row.ownDesc = true
			raw = fw.appendJSON(raw, p, &p.Variants[j], true)
		}
	}
	rows := len(es) * benchVariantsPerEntry
	for _, level := range []int{gzip.StatelessCompression, gzip.HuffmanOnly, 1, 2, 3, 5, 6} {
		b.Run(fmt.Sprintf("level%d", level), func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				out.Reset()
				zw, _ := gzip.NewWriterLevel(&out, level)
				for off := 0; off < len(raw); off += flushSize {
					if _, err := zw.Write(raw[off:min(off+flushSize, len(raw))]); err != nil {
						b.Fatal(err)
					}
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw))/float64(out.Len()), "ratio")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/variant")
		})
	}
}
