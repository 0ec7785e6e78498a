package sqlite

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

func TestClockCache(t *testing.T) {
	c := newClockCache[int](3)
	gen := func() uint64 { _, _, g := c.get("none"); return g }
	for i, k := range []string{"a", "b", "c"} {
		c.put(gen(), k, i)
	}
	if v, ok, _ := c.get("a"); !ok || v != 0 {
		t.Fatalf("get(a) = %d, %v", v, ok)
	}
	// Full: "a" was used since it went in, so the hand passes it (clearing
	// its flag) and evicts "b", which was not.
	c.put(gen(), "d", 3)
	if _, ok, _ := c.get("a"); !ok {
		t.Error("the recently used a was evicted")
	}
	if _, ok, _ := c.get("d"); !ok {
		t.Error("d was not stored")
	}
	if len(c.index) != 3 || len(c.slots) != 3 {
		t.Errorf("%d keys in %d slots, want 3", len(c.index), len(c.slots))
	}
	for i := range 100 {
		c.put(gen(), fmt.Sprint("k", i), i)
		if len(c.index) > 3 {
			t.Fatalf("%d keys, over the size", len(c.index))
		}
	}
	// Replacing a key's value keeps one entry.
	c.put(gen(), "k99", 42)
	if v, _, _ := c.get("k99"); v != 42 {
		t.Errorf("replaced value = %d", v)
	}

	// A value read before an invalidation is not stored after it.
	_, _, old := c.get("x")
	c.invalidate()
	c.put(old, "x", 1)
	if _, ok, _ := c.get("x"); ok {
		t.Error("a value of the old generation was stored")
	}
	if _, ok, _ := c.get("k99"); ok {
		t.Error("invalidate kept a value")
	}
	c.put(gen(), "x", 2)
	if v, ok, _ := c.get("x"); !ok || v != 2 {
		t.Errorf("after invalidate: get(x) = %d, %v", v, ok)
	}
}

// A lookup after a catalog Commit returned sees the new snapshot, cached or
// not, and entries handed out are the caller's own.
func TestEntryCacheFollowsSnapshots(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	put := func(version string, price int64) {
		w, err := db.BeginCatalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Rollback()
		e := storagetest.Entry(1)
		for i := range e.Product.Variants {
			e.Product.Variants[i].Price.Amount = price
		}
		if err := w.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, bridge.CatalogInfo{Version: version}); err != nil {
			t.Fatal(err)
		}
	}
	price := func() int64 {
		e, err := db.CatalogEntryByVariant(ctx, "p1-v1")
		if err != nil {
			t.Fatal(err)
		}
		return e.Product.Variants[0].Price.Amount
	}
	put("v1", 100)
	if p := price(); p != 100 {
		t.Fatalf("price %d, want 100", p)
	}
	e, _ := db.CatalogEntryByVariant(ctx, "p1-v1") // cached now
	e.Product.Variants[0].Price.Amount = 1
	e.Product.Variants[0].Media[0].URL = "changed"
	e.Product.Media = nil
	if p := price(); p != 100 {
		t.Errorf("a caller's change reached the cache: price %d", p)
	}
	if e2, _ := db.CatalogEntryByVariant(ctx, "p1-v1"); e2.Product.Variants[0].Media[0].URL == "changed" {
		t.Error("a caller's change to a nested slice reached the cache")
	}
	put("v2", 200)
	if p := price(); p != 200 {
		t.Errorf("after a new snapshot: price %d, want 200", p)
	}
	// A failed sync changes nothing, and the next lookups still hit.
	w, _ := db.BeginCatalog(ctx)
	w.Put(ctx, storagetest.Entry(2))
	w.Rollback()
	if p := price(); p != 200 {
		t.Errorf("after a rolled back sync: price %d, want 200", p)
	}
}

// The cache's deep copies share no memory that can be changed: every
// pointer, slice and map reachable from the copy differs from the
// original's. The walk fails on kinds the clone functions do not handle, so
// a new field of such a kind is noticed here.
func TestCloneEntryShares(t *testing.T) {
	var e bridge.CatalogEntry
	fill(reflect.ValueOf(&e).Elem(), 0)
	noShared(t, "CatalogEntry", reflect.ValueOf(e), reflect.ValueOf(cloneEntry(e)))
	if !reflect.DeepEqual(e, cloneEntry(e)) {
		t.Error("cloneEntry changed the entry")
	}
	var empty bridge.CatalogEntry // nil stays nil, empty stays empty
	empty.Product.Variants = []bridge.Variant{}
	if !reflect.DeepEqual(empty, cloneEntry(empty)) {
		t.Error("cloneEntry changed an empty entry")
	}
}

func TestCloneSessionShares(t *testing.T) {
	var s bridge.Session
	fill(reflect.ValueOf(&s).Elem(), 0)
	noShared(t, "Session", reflect.ValueOf(s), reflect.ValueOf(cloneSession(s)))
	if !reflect.DeepEqual(s, cloneSession(s)) {
		t.Error("cloneSession changed the session")
	}
}

// fill sets every field reachable from v to a non-zero value: two elements
// per slice, a value behind every pointer.
func fill(v reflect.Value, depth int) {
	if depth > 10 {
		panic("fill: too deep")
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprint("s", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(depth + 1))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 6, 1, 10, 0, depth, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), depth+1)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	default:
		panic(fmt.Sprintf("fill: %s: add it here and to the clone functions", v.Type()))
	}
}

// noShared fails if a and b share a pointer target or a slice's array.
func noShared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32:
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[time.Time]() {
			return // a value; its *Location is shared and immutable
		}
		for i := range a.NumField() {
			noShared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
		}
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the copy shares the pointer", path)
			return
		}
		noShared(t, path, a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() == 0 {
			return
		}
		if unsafe.Pointer(a.Index(0).Addr().Pointer()) == unsafe.Pointer(b.Index(0).Addr().Pointer()) {
			t.Errorf("%s: the copy shares the slice's array", path)
			return
		}
		for i := range a.Len() {
			noShared(t, fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i))
		}
	default:
		t.Errorf("%s: kind %s is not handled by the clone functions", path, a.Kind())
	}
}

// cacheableSession knows every omitempty slice or map of a session (where
// JSON loses the difference between empty and nil).
func TestCacheableSessionCoversFields(t *testing.T) {
	var found []string
	var walk func(path string, typ reflect.Type, seen map[reflect.Type]bool)
	walk = func(path string, typ reflect.Type, seen map[reflect.Type]bool) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeFor[time.Time]() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			k := f.Type.Kind()
			if (k == reflect.Slice || k == reflect.Map) && strings.Contains(f.Tag.Get("json"), "omitempty") {
				found = append(found, path+"."+f.Name)
			}
			walk(path+"."+f.Name, f.Type, seen)
		}
	}
	walk("Session", reflect.TypeFor[bridge.Session](), map[reflect.Type]bool{})
	// None today: a new one would come back nil where the session had an
	// empty one, and cacheableSession would have to refuse those.
	if len(found) != 0 {
		t.Errorf("omitempty slices and maps of a session: %v; cacheableSession must refuse empty ones: update it", found)
	}
}

// Whatever the cache holds, Session returns what decoding the stored body
// returns: a session read back right after its Commit (from the cache when
// it is cacheable) equals the one a fresh process decodes.
func TestSessionCacheTransparent(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/bridge.db"
	db := openPath(t, path)
	cest := time.FixedZone("CEST", 7200)
	sessions := map[string]func(*bridge.Session){
		"full":               func(*bridge.Session) {},
		"empty slices":       func(s *bridge.Session) { s.Interventions = []string{}; s.Messages = []bridge.Message{} },
		"invalid UTF-8":      func(s *bridge.Session) { s.Lines[0].Title = "bad \xff byte" },
		"literal escape":     func(s *bridge.Session) { s.Lines[0].Title = `\ufffd` },
		"valid replacement":  func(s *bridge.Session) { s.Lines[0].Title = "\ufffd" },
		"zone and monotonic": func(s *bridge.Session) { s.UpdatedAt = time.Now(); s.CreatedAt = s.CreatedAt.In(cest) },
		"nil slices":         func(s *bridge.Session) { s.Lines, s.Options, s.Links = nil, nil, nil },
	}
	for name, mod := range sessions {
		s := storagetest.TypicalSession(name)
		s.Interventions = []string{"3ds"}
		mod(&s)
		if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
			t.Fatal(err)
		}
	}
	first := map[string]bridge.Session{}
	for name := range sessions {
		got, err := db.Session(ctx, "agent-key", name)
		if err != nil {
			t.Fatal(err)
		}
		first[name] = got
		again, _ := db.Session(ctx, "agent-key", name) // from the cache in every case now
		if !reflect.DeepEqual(got, again) {
			t.Errorf("%s: the second read differs from the first", name)
		}
	}
	fresh := openPath(t, path) // another handle: empty caches
	for name := range sessions {
		cold, err := fresh.Session(ctx, "agent-key", name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first[name], cold) {
			g, _ := json.Marshal(first[name])
			w, _ := json.Marshal(cold)
			t.Errorf("%s: read after Commit differs from a cold read\n got: %s\nwant: %s", name, g, w)
		}
	}
}
