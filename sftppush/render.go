package sftppush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// file is one rendered file to upload.
type file struct {
	// remote is its stable name under the remote folder (slash-separated).
	remote string
	local  string
	size   int64
	items  int
	// sum is the SHA-256 of the content: the temporary name of a partial
	// upload carries it, so a resumed upload only ever continues the same
	// content.
	sum string
}

// rendered is one format's shards.
type rendered struct {
	format feed.Format
	files  []file
}

// shardMargin is how far under ShardBytes a shard is cut: the writers hold
// up to a buffer of compressed output the file does not show yet.
func shardMargin(maxBytes int64) int64 { return min(256<<10, maxBytes/4) }

// shardName is the remote name of shard i (1-based) of n of format f: the
// format's own name when there is one shard, "stem-part-NNN.ext" when
// there are several ("openai-part-001.jsonl.gz").
func shardName(f feed.Format, i, n int) string {
	name := string(f)
	if n == 1 {
		return name
	}
	dir, base := path.Split(name)
	stem, ext, _ := strings.Cut(base, ".")
	return fmt.Sprintf("%s%s-part-%03d.%s", dir, stem, i, ext)
}

// isShardOf reports whether base, a file name in the format's folder, is a
// file of format f under either naming, so that shards a smaller catalog
// no longer makes can be removed.
func isShardOf(f feed.Format, base string) bool {
	_, own := path.Split(string(f))
	if base == own {
		return true
	}
	stem, ext, _ := strings.Cut(own, ".")
	rest, ok := strings.CutPrefix(base, stem+"-part-")
	if !ok {
		return false
	}
	num, tail, ok := strings.Cut(rest, ".")
	return ok && tail == ext && len(num) >= 3 && strings.Trim(num, "0123456789") == ""
}

// shardWriter writes one format into shards of at most maxItems variants
// and about maxBytes bytes each.
type shardWriter struct {
	format   feed.Format
	dir      string
	settings feed.Settings
	maxItems int
	cutAt    int64

	f     *os.File
	cw    *countingWriter
	h     hash.Hash
	w     feed.Writer
	items int
	done  []file
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// counter is what every feed writer reports.
type counter interface {
	Counts() (products, variants int)
}

func (s *shardWriter) write(e *bridge.CatalogEntry) error {
	if s.w != nil && (s.items+len(e.Product.Variants) > s.maxItems || s.cw.n >= s.cutAt) && s.items > 0 {
		if err := s.finish(); err != nil {
			return err
		}
	}
	if s.w == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if err := s.w.Write(e); err != nil {
		return fmt.Errorf("%s: %w", s.format, err)
	}
	if c, ok := s.w.(counter); ok {
		_, s.items = c.Counts()
	}
	return nil
}

func (s *shardWriter) open() error {
	f, err := os.CreateTemp(s.dir, "shard-*")
	if err != nil {
		return fmt.Errorf("%s: %w", s.format, err)
	}
	s.f, s.h = f, sha256.New()
	s.cw = &countingWriter{w: io.MultiWriter(f, s.h)}
	w, err := feed.NewWriter(s.format, s.cw, s.settings)
	if err != nil {
		_ = f.Close()
		return err
	}
	s.w, s.items = w, 0
	return nil
}

// finish closes the current shard.
func (s *shardWriter) finish() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.format, err)
	}
	s.done = append(s.done, file{local: s.f.Name(), size: s.cw.n, items: s.items, sum: hex.EncodeToString(s.h.Sum(nil))})
	s.w = nil
	return nil
}

// render writes the formats of the snapshot into dir as shards, reading
// the snapshot once. A format with no published variant still gets one
// (empty) file, so the remote snapshot says "nothing" rather than keeping
// yesterday's products.
func render(ctx context.Context, dir string, formats []feed.Format, s feed.Settings, maxItems int, maxBytes int64,
	each func(ctx context.Context, fn func(bridge.CatalogEntry) error) error) ([]rendered, error) {
	ws := make([]*shardWriter, len(formats))
	for i, f := range formats {
		ws[i] = &shardWriter{format: f, dir: dir, settings: s, maxItems: maxItems, cutAt: maxBytes - shardMargin(maxBytes)}
	}
	err := each(ctx, func(e bridge.CatalogEntry) error {
		for _, w := range ws {
			if err := w.write(&e); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range ws {
		if err == nil && w.w == nil && len(w.done) == 0 {
			err = w.open()
		}
		if ferr := w.finish(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]rendered, len(ws))
	for i, w := range ws {
		out[i].format = w.format
		for j, f := range w.done {
			f.remote = shardName(w.format, j+1, len(w.done))
			out[i].files = append(out[i].files, f)
		}
		if w.format == feed.FormatACP {
			meta, err := writeMetadata(dir, s)
			if err != nil {
				return nil, err
			}
			out[i].files = append(out[i].files, meta)
		}
	}
	return out, nil
}

// writeMetadata writes acp/metadata.json, which goes with the ACP products
// file in a full replacement.
func writeMetadata(dir string, s feed.Settings) (file, error) {
	p := filepath.Join(dir, "metadata.json")
	f, err := os.Create(p)
	if err != nil {
		return file{}, fmt.Errorf("acp metadata: %w", err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	err = feed.WriteACPMetadata(cw, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return file{}, fmt.Errorf("acp metadata: %w", err)
	}
	return file{remote: feed.FileACPMetadata, local: p, size: cw.n, sum: hex.EncodeToString(h.Sum(nil))}, nil
}
