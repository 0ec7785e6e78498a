// Package migrate applies a storage driver's schema: a numbered list of
// SQL files (migrations/NNNN_name.sql, embedded by the driver) applied in
// order, each once, each recorded in the schema_migrations table. There is
// no migration library: this is a few dozen lines, each driver needs its
// own SQL anyway, and the bridge never migrates down, which is most of
// what such libraries add.
//
// The order of the steps and the rules (names, numbering, refusing a
// database a newer bridge migrated) are here; each driver brings its
// statements and its way of keeping two processes from migrating at once
// (SQLite: BEGIN IMMEDIATE per migration; Postgres: an advisory lock
// around the whole run) as a DB.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one file of the list.
type Migration struct {
	Version int
	Name    string // file name without the number and ".sql"
	File    string // its path in the file system it came from
	SQL     string
}

// Load reads migrations/NNNN_name.sql files of fsys sorted by NNNN.
func Load(fsys fs.FS) ([]Migration, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", f)
		}
		body, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: version, Name: name, File: f, SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", ms[i-1].File, ms[i].File)
		}
	}
	return ms, nil
}

// DB is a database being migrated, in the driver's dialect.
type DB interface {
	// Init creates schema_migrations (version, name, applied_at) unless it
	// exists.
	Init(ctx context.Context) error
	// Applied returns the versions schema_migrations records.
	Applied(ctx context.Context) ([]int, error)
	// Apply runs m's SQL and records m in schema_migrations in one
	// transaction, so a failed migration leaves the schema as the previous
	// one left it. A driver whose Applied may be out of date by then
	// (another process migrating meanwhile) checks again inside the
	// transaction and applies nothing if m is recorded.
	Apply(ctx context.Context, m Migration) error
}

// Run applies the migrations of ms that db has not recorded, in order.
func Run(ctx context.Context, db DB, ms []Migration) error {
	if err := db.Init(ctx); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := db.Applied(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	// A database migrated by a newer bridge has tables and meanings this
	// binary does not know; writing to it could corrupt them (on a shared
	// database, a rolling upgrade runs the new replicas' migrations first;
	// the old ones keep running until replaced, but a restarted old one
	// refuses to start).
	if len(ms) > 0 && len(applied) > 0 {
		if newest := slices.Max(applied); newest > ms[len(ms)-1].Version {
			return fmt.Errorf("the database is at schema version %d, newer than this bridge knows (%d): run the newer bridge, or restore a backup",
				newest, ms[len(ms)-1].Version)
		}
	}
	for _, m := range ms {
		if slices.Contains(applied, m.Version) {
			continue
		}
		if err := db.Apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.File, err)
		}
	}
	return nil
}
