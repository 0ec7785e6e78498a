package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

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
type FeedFiles struct {
	dir    string
	maxAge time.Duration

	mu    sync.RWMutex
	files map[string]feedFile // by file name
}

type feedFile struct {
	path    string
	etag    string
	modTime time.Time
}

// NewFeedFiles serves the feeds rendered into dir.
func NewFeedFiles(dir string, maxAge time.Duration) *FeedFiles {
	return &FeedFiles{dir: dir, maxAge: maxAge}
}

// Refresh re-reads the folder after a render; call it once files are in
// place. Files the render did not produce stop being served.
func (f *FeedFiles) Refresh() error {
	files := map[string]feedFile{}
	for _, rt := range feedRoutes {
		p := filepath.Join(f.dir, filepath.FromSlash(rt.file))
		st, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("feed file %s: %w", rt.file, err)
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		files[rt.file] = feedFile{path: p, etag: `"` + sum + `"`, modTime: st.ModTime()}
	}
	f.mu.Lock()
	f.files = files
	f.mu.Unlock()
	return nil
}

// Ready reports whether any feed has been rendered.
func (f *FeedFiles) Ready() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.files) > 0
}

func hashFile(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("open feed file: %w", err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

func (f *FeedFiles) routes(r *mux.Router) {
	for _, rt := range feedRoutes {
		r.Handle(rt.url, f.handler(rt)).Methods(http.MethodGet, http.MethodHead)
	}
}

func (f *FeedFiles) handler(rt feedRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.RLock()
		ff, ok := f.files[rt.file]
		f.mu.RUnlock()
		if !ok {
			w.Header().Set("Retry-After", "30")
			WriteError(w, http.StatusServiceUnavailable, "service_unavailable", "feed_not_ready", "the feed is not built yet: the first catalog sync is still running or has failed (see /readyz)")
			return
		}
		// The file may be replaced by a new render between Refresh and Open;
		// the rename is atomic, so we serve either the old or the new file
		// whole — with a fresh ETag on the next Refresh.
		fh, err := os.Open(ff.path)
		if err != nil {
			WriteError(w, http.StatusServiceUnavailable, "service_unavailable", "feed_not_ready", "the feed is being rebuilt; retry shortly")
			return
		}
		defer fh.Close()
		h := w.Header()
		h.Set("Content-Type", rt.contentType)
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(f.maxAge.Seconds())))
		h.Set("ETag", ff.etag)
		http.ServeContent(w, r, "", ff.modTime, fh)
	})
}
