package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/gorilla/mux"
)

// feedRoute ties a public URL to a file the feed builder writes.
type feedRoute struct {
	url, file, contentType string
}

// feedRoutes mirror the file names of package feed's formats.
var feedRoutes = []feedRoute{
	{"/api/commerce/feed.json", "feed.json", "application/json"},
	{"/feeds/openai.jsonl.gz", "openai.jsonl.gz", "application/gzip"},
	{"/feeds/openai.csv.gz", "openai.csv.gz", "application/gzip"},
	{"/feeds/openai.tsv.gz", "openai.tsv.gz", "application/gzip"},
	{"/feeds/acp/products.jsonl.gz", "acp/products.jsonl.gz", "application/gzip"},
	{"/feeds/acp/metadata.json", "acp/metadata.json", "application/json"},
}

// FeedFiles serves the rendered feed files of a folder with strong ETags
// (content hashes, so an unchanged feed keeps its ETag across restarts) and
// Last-Modified; http.ServeContent answers If-None-Match, If-Modified-Since
// and Range from them.
//
// Refresh opens every file and keeps the handles: requests are served from
// the handle whose content was hashed, never from the path. A render renames
// new files over the old ones at any moment; serving by path could send new
// bytes under the old ETag (a 304 for changed content, or a resumed download
// spliced from two files). Old handles close when their last request ends.
type FeedFiles struct {
	dir    string
	maxAge time.Duration
	serve  map[string]bool // the configured files; others are never served

	mu  sync.RWMutex
	gen *generation
}

// generation is one Refresh's set of open files.
type generation struct {
	files   map[string]*feedFile // by file name
	refs    atomic.Int64
	retired atomic.Bool
	once    sync.Once
}

type feedFile struct {
	f       *os.File
	size    int64
	etag    string
	modTime time.Time
}

// NewFeedFiles serves the feed files rendered into dir; files lists the
// configured ones (slash paths such as "openai.jsonl.gz", "acp/metadata.json"):
// a file of a format dropped from the config is not served even if it is
// still on disk.
func NewFeedFiles(dir string, maxAge time.Duration, files []string) *FeedFiles {
	serve := map[string]bool{}
	for _, f := range files {
		serve[f] = true
	}
	return &FeedFiles{dir: dir, maxAge: maxAge, serve: serve}
}

// Refresh opens the folder's feed files after a render; call it once files
// are in place. Files the render did not produce stop being served.
func (f *FeedFiles) Refresh() error {
	g := &generation{files: map[string]*feedFile{}}
	for _, rt := range feedRoutes {
		if !f.serve[rt.file] {
			continue
		}
		ff, err := openFeedFile(filepath.Join(f.dir, filepath.FromSlash(rt.file)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			g.close()
			return fmt.Errorf("feed file %s: %w", rt.file, err)
		}
		g.files[rt.file] = ff
	}
	f.mu.Lock()
	old := f.gen
	f.gen = g
	f.mu.Unlock()
	if old != nil {
		old.retired.Store(true)
		if old.refs.Load() == 0 {
			old.close()
		}
	}
	return nil
}

func openFeedFile(p string) (*feedFile, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(fh, 0, st.Size())); err != nil {
		fh.Close()
		return nil, fmt.Errorf("hash: %w", err)
	}
	return &feedFile{f: fh, size: st.Size(), etag: `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`, modTime: st.ModTime()}, nil
}

func (g *generation) close() {
	g.once.Do(func() {
		for _, ff := range g.files {
			ff.f.Close()
		}
	})
}

// acquire returns the current generation, held until release.
func (f *FeedFiles) acquire() *generation {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.gen != nil {
		f.gen.refs.Add(1)
	}
	return f.gen
}

func (f *FeedFiles) release(g *generation) {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.close()
	}
}

// Ready reports whether any feed has been rendered.
func (f *FeedFiles) Ready() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.gen != nil && len(f.gen.files) > 0
}

func (f *FeedFiles) routes(r *mux.Router) {
	for _, rt := range feedRoutes {
		r.Handle(rt.url, f.handler(rt)).Methods(http.MethodGet, http.MethodHead)
	}
}

func (f *FeedFiles) handler(rt feedRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.serve[rt.file] {
			WriteError(w, http.StatusNotFound, acp.InvalidRequest, "feed_not_enabled",
				"this feed format is not enabled; add it to feed.formats in the bridge config")
			return
		}
		g := f.acquire()
		if g != nil {
			defer f.release(g)
		}
		var ff *feedFile
		if g != nil {
			ff = g.files[rt.file]
		}
		if ff == nil {
			w.Header().Set("Retry-After", "30")
			WriteError(w, http.StatusServiceUnavailable, acp.ServiceUnavailable, "feed_not_ready", "the feed is not built yet: the first catalog sync is still running or has failed (see /readyz)")
			return
		}
		h := w.Header()
		h.Set("Content-Type", rt.contentType)
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(f.maxAge.Seconds())))
		h.Set("ETag", ff.etag)
		http.ServeContent(w, r, "", ff.modTime, io.NewSectionReader(ff.f, 0, ff.size))
	})
}
