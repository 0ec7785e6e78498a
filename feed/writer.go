package feed

import (
	"bufio"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"

	bridge "github.com/acp-bridge/bridge"
)

// Format names a published feed file; its value is the file's path under the
// feed directory (and under the feed URL prefix).
type Format string

// The published formats.
const (
	// FormatSeedJSON is the seed's pull feed, served at
	// /api/commerce/feed.json: OpenAI's first (G1, 2025-09) field names.
	FormatSeedJSON Format = "feed.json"
	// FormatOpenAIJSONL, FormatOpenAICSV and FormatOpenAITSV are OpenAI's
	// current flat file-upload schema (G2), one row per variant.
	FormatOpenAIJSONL Format = "openai.jsonl.gz"
	FormatOpenAICSV   Format = "openai.csv.gz"
	FormatOpenAITSV   Format = "openai.tsv.gz"
	// FormatACP is the ACP 2026-04-17 nested feed (G3), one Product per
	// line. Build writes FileACPMetadata beside it.
	FormatACP Format = "acp/products.jsonl.gz"
)

// FileACPMetadata is the ACP FeedMetadata file that accompanies FormatACP.
const FileACPMetadata = "acp/metadata.json"

// Formats lists every format, in the order Build writes them.
func Formats() []Format {
	return []Format{FormatSeedJSON, FormatOpenAIJSONL, FormatOpenAICSV, FormatOpenAITSV, FormatACP}
}

// Writer streams catalog entries into one feed format.
//
// Write publishes the entry's valid variants and skips excluded products; it
// fails only when the underlying writer does, never because of the entry's
// content. Close writes what ends the format (closing brackets, the gzip
// trailer) and flushes, but never closes the underlying io.Writer. A Writer
// is not safe for concurrent use.
type Writer interface {
	Write(e *bridge.CatalogEntry) error
	Close() error
}

// NewWriter returns a Writer of format f onto w.
func NewWriter(f Format, w io.Writer, s Settings) (Writer, error) {
	s = s.withDefaults()
	switch f {
	case FormatSeedJSON:
		return newSeedWriter(w, s), nil
	case FormatOpenAIJSONL:
		return newFlatWriter(w, s, flatJSONL), nil
	case FormatOpenAICSV:
		return newFlatWriter(w, s, flatCSV), nil
	case FormatOpenAITSV:
		return newFlatWriter(w, s, flatTSV), nil
	case FormatACP:
		return newACPWriter(w, s), nil
	}
	return nil, fmt.Errorf("feed: unknown format %q", f)
}

// gzipLevel is the compression level of the .gz formats. Compression is most
// of a gzipped writer's time (~70% for openai.jsonl.gz), so the level is the
// fastest that still compresses well. BenchmarkGzipLevels on the synthetic
// JSONL rows (~1.9 KB each) on the 2-core dev machine:
//
//	level           MB/s   ratio
//	1 (BestSpeed)   ~500   13.1
//	2               ~390   14.3
//	3               ~450   14.2
//	5 (default)     ~310   14.9
//	6               ~190   15.4
//	-3 (stateless)  ~360   11.0
//
// Level 1 is the fastest; the default would cost 60% more time for 12%
// smaller files. Feeds are rebuilt on every sync and fetched by machines,
// so time matters more than the last bytes.
const gzipLevel = gzip.BestSpeed

// flushSize is how much encoded output a writer gathers before handing it to
// the compressor or the file: large enough that per-call overhead vanishes,
// small enough to stay in cache.
const flushSize = 64 << 10

// out is the buffered, optionally gzipped sink the writers share, with the
// counts Build reports.
type out struct {
	w        io.Writer // the caller's writer
	gz       *gzip.Writer
	gzBuf    *bufio.Writer // between gz and w
	buf      []byte
	err      error
	closed   bool
	products int
	variants int
}

func newOut(w io.Writer, gzipped bool) out {
	o := out{w: w, buf: make([]byte, 0, flushSize+flushSize/4)}
	if gzipped {
		// The zero Header has no name and no modification time, so the same
		// rows always compress to the same bytes (stable ETags).
		// The compressor emits its output a few hundred bytes at a time;
		// unbuffered, that is a system call each on a file.
		o.gzBuf = bufio.NewWriterSize(w, flushSize)
		gz, err := gzip.NewWriterLevel(o.gzBuf, gzipLevel)
		if err != nil {
			panic(err) // gzipLevel is a valid constant
		}
		o.gz = gz
	}
	return o
}

// maybeFlush hands the buffer on once it is full.
func (o *out) maybeFlush() error {
	if len(o.buf) < flushSize {
		return o.err
	}
	return o.flush()
}

func (o *out) flush() error {
	if o.err != nil || len(o.buf) == 0 {
		return o.err
	}
	var err error
	if o.gz != nil {
		_, err = o.gz.Write(o.buf)
	} else {
		_, err = o.w.Write(o.buf)
	}
	o.buf = o.buf[:0]
	if err != nil {
		o.err = fmt.Errorf("feed: write: %w", err)
	}
	return o.err
}

func (o *out) close() error {
	if o.closed {
		return o.err
	}
	o.closed = true
	if err := o.flush(); err != nil {
		return err
	}
	if o.gz != nil {
		if err := o.gz.Close(); err != nil {
			o.err = fmt.Errorf("feed: finish gzip: %w", err)
		} else if err := o.gzBuf.Flush(); err != nil {
			o.err = fmt.Errorf("feed: write: %w", err)
		}
	}
	return o.err
}

func (o *out) write(e *bridge.CatalogEntry) error {
	if o.closed {
		return fmt.Errorf("feed: write after close")
	}
	return o.err
}

// Counts reports how many products and variants a writer has published.
func (o *out) Counts() (products, variants int) { return o.products, o.variants }

// publishable tells which of an entry's variants may be published, without
// the allocations of bridge.CatalogEntry.ValidVariants (same rules): ok is
// false when a product-level error excludes the product, and filter is true
// when some variant has its own error and each must be checked with
// bridge.CatalogEntry.VariantValid.
func publishable(e *bridge.CatalogEntry) (ok, filter bool) {
	for i := range e.Issues {
		is := &e.Issues[i]
		if is.Severity != bridge.SeverityError {
			continue
		}
		if is.VariantID == "" {
			return false, false
		}
		filter = true
	}
	return len(e.Product.Variants) > 0, filter
}

// validCount counts the variants a writer will publish.
func validCount(e *bridge.CatalogEntry, filter bool) int {
	if !filter {
		return len(e.Product.Variants)
	}
	n := 0
	for i := range e.Product.Variants {
		if e.VariantValid(e.Product.Variants[i].ID) {
			n++
		}
	}
	return n
}
