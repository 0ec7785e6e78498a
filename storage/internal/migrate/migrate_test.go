package migrate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadRejectsBadNames(t *testing.T) {
	for _, fsys := range []fstest.MapFS{
		{"migrations/init.sql": {}},
		{"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}},
	} {
		if _, err := Load(fsys); err == nil {
			t.Errorf("Load(%v) accepted bad names", fsys)
		}
	}
}

func TestLoadSorts(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"migrations/0010_later.sql": {Data: []byte("B")},
		"migrations/0002_first.sql": {Data: []byte("A")},
		"other/0001_ignored.sql":    {},
	})
	if err != nil || len(ms) != 2 || ms[0] != (Migration{2, "first", "migrations/0002_first.sql", "A"}) || ms[1].Version != 10 {
		t.Fatalf("Load = %+v, %v", ms, err)
	}
}

// fakeDB records what Run asks of a database.
type fakeDB struct {
	applied []int
	ran     []int
	fail    int // the version whose Apply fails
}

func (f *fakeDB) Init(context.Context) error             { return nil }
func (f *fakeDB) Applied(context.Context) ([]int, error) { return f.applied, nil }
func (f *fakeDB) Apply(_ context.Context, m Migration) error {
	if m.Version == f.fail {
		return errors.New("syntax error")
	}
	f.ran = append(f.ran, m.Version)
	return nil
}

func TestRun(t *testing.T) {
	ms := []Migration{{Version: 1, File: "migrations/0001_a.sql"}, {Version: 2, File: "migrations/0002_b.sql"}, {Version: 3, File: "migrations/0003_c.sql"}}
	db := &fakeDB{applied: []int{1}}
	if err := Run(t.Context(), db, ms); err != nil || !slices.Equal(db.ran, []int{2, 3}) {
		t.Errorf("Run applied %v (%v), want 2 and 3", db.ran, err)
	}
	db = &fakeDB{fail: 2}
	if err := Run(t.Context(), db, ms); err == nil || !strings.Contains(err.Error(), "0002_b.sql") || !slices.Equal(db.ran, []int{1}) {
		t.Errorf("a failing migration: %v, applied %v; want the file named and nothing after it", err, db.ran)
	}
	db = &fakeDB{applied: []int{1, 9}}
	if err := Run(t.Context(), db, ms); err == nil || !strings.Contains(err.Error(), "schema version 9, newer than this bridge knows (3)") || db.ran != nil {
		t.Errorf("a newer database: %v, applied %v; want a refusal and nothing applied", err, db.ran)
	}
}
