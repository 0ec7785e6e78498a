package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/migrate"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

func openTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) bridge.Storage { return openTemp(t) })
}

func TestMigrationsAppliedOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nested", "dir", "bridge.db") // parents are created
	ms, err := migrate.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	for range 3 {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var rows, maxVersion int
		if err := db.db.QueryRowContext(ctx,
			`SELECT count(*), max(version) FROM schema_migrations`).Scan(&rows, &maxVersion); err != nil {
			t.Fatal(err)
		}
		if rows != len(ms) || maxVersion != ms[len(ms)-1].Version {
			t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d",
				rows, maxVersion, len(ms), ms[len(ms)-1].Version)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWAL(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	// Ask several connections: pragmas must hold on every one of the pool.
	for range 3 {
		conn, err := db.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var mode string
		var busy, fk, sync, limit int
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_size_limit`).Scan(&limit); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != 5000 || fk != 1 || sync != 2 || limit != 64<<20 {
			t.Errorf("journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%d journal_size_limit=%d; want wal 5000 1 2(FULL) %d",
				mode, busy, fk, sync, limit, 64<<20)
		}
	}
}

func TestOpenDSN(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, dsn string
		wantErr   string // substring; "" for success
	}{
		{"plain path", filepath.Join(dir, "a.db"), ""},
		{"file URI", "file:" + filepath.Join(dir, "b.db"), ""},
		{"file URI with params", "file:" + filepath.Join(dir, "c.db") + "?_pragma=busy_timeout(100)", ""},
		{"memory", ":memory:", "in-memory"},
		{"memory URI", "file::memory:?cache=shared", "in-memory"},
		{"memory mode", "file:x.db?mode=memory", "in-memory"},
		{"empty", "", "no database path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), tt.dsn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open(%q): %v", tt.dsn, err)
				}
				defer db.Close()
				if err := db.Ping(t.Context()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want error containing %q", tt.dsn, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%q) = %v, want error containing %q", tt.dsn, err, tt.wantErr)
			}
		})
	}
	for _, f := range []string{"a.db", "b.db", "c.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("database file %s: %v", f, err)
		}
	}
}

func TestMigrationFailureNamesFile(t *testing.T) {
	// A bare database: the real migrations would already hold versions 1, 2.
	dsn, err := buildDSN(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys := fstest.MapFS{
		"migrations/0001_ok.sql":     {Data: []byte(`CREATE TABLE t1 (x INTEGER);`)},
		"migrations/0002_broken.sql": {Data: []byte(`CREATE TABLE t2 (x INTEGER); CREATE TABLE oops (;`)},
	}
	err = migrateFS(t.Context(), db, fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Fatalf("migrate = %v, want an error naming 0002_broken.sql", err)
	}
	// The broken migration left nothing behind; the good one stays applied.
	var t1, t2 int
	db.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 't1'`).Scan(&t1)
	db.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 't2'`).Scan(&t2)
	if t1 != 1 || t2 != 0 {
		t.Errorf("after failed migration: t1 exists=%d t2 exists=%d, want 1 and 0", t1, t2)
	}
}

func TestCloseAbandonsWriter(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, storagetest.Entry(1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "late"}); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if _, err := db.BeginCatalog(ctx); err == nil {
		t.Error("BeginCatalog after Close succeeded")
	}
}

func TestSnapshotSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bridge.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "v1", Products: 10}); err != nil {
		t.Fatal(err)
	}
	if err := db.Reserve(ctx, "o1", []bridge.Reservation{{VariantID: "p3-v1", Quantity: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openPath(t, path)
	info, err := db.CatalogInfo(ctx)
	if err != nil || info.Version != "v1" || info.Products != 10 {
		t.Fatalf("CatalogInfo after reopen = %+v, %v", info, err)
	}
	if _, err := db.CatalogEntryByVariant(ctx, "p9-v2"); err != nil {
		t.Errorf("CatalogEntryByVariant after reopen: %v", err)
	}
	if n, err := db.Reserved(ctx, "p3-v1", time.Time{}); err != nil || n != 2 {
		t.Errorf("Reserved after reopen = %d, %v; want 2", n, err)
	}
}

func openPath(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The swap copies the staging tables into the catalog tables with SELECT *,
// and only identical declarations get SQLite's fast transfer.
func TestStageSchemaMatchesCatalog(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	conn := w.(*catalogWriter).conn
	describe := func(schema, table string) string {
		t.Helper()
		var out []string
		for _, q := range []string{
			`SELECT name, type, "notnull", pk FROM pragma_table_info(?, ?)`,
			`SELECT "unique", origin, partial FROM pragma_index_list(?, ?) ORDER BY origin`,
			`SELECT strict, wr FROM pragma_table_list WHERE name = ?1 AND schema = ?2`,
		} {
			rows, err := conn.QueryContext(ctx, q, table, schema)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprint(vals))
			}
			rows.Close()
		}
		return strings.Join(out, "; ")
	}
	for _, pair := range [][2]string{{"catalog_products", "stage_products"}, {"catalog_variants", "stage_variants"}} {
		main, stage := describe("main", pair[0]), describe("temp", pair[1])
		if main != stage {
			t.Errorf("%s and %s are declared differently:\nmain:  %s\nstage: %s", pair[0], pair[1], main, stage)
		}
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bridge.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from the future', '2030-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "schema version 9999, newer than this bridge knows") {
		t.Fatalf("want a refusal of the newer schema, got %v", err)
	}
}
