package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is a numbered list of SQL files applied in order, like the
// SQLite driver's (its own list: the two dialects differ, and a Postgres
// database starts at today's schema, with none of SQLite's history).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Advisory lock classes (the first key of pg_advisory_lock(int, int)):
// advisory locks are shared by everything in a database, so the bridge's
// carry a class of their own, and the second key is a hash of what is
// locked (the schema, a variant).
const (
	lockMigrate = 0x42524d47 // "BRMG": migrations, keyed by the schema
	lockStock   = 0x4252534b // "BRSK": holds of a variant, keyed by schema and variant
	lockNamed   = 0x42524e4c // "BRNL": TryLock's, keyed by schema and name
)

type migration struct {
	version int
	name    string // file name without the number and ".sql"
	file    string
	sql     string
}

// loadMigrations reads migrations/NNNN_name.sql files sorted by NNNN.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
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
		ms = append(ms, migration{version: version, name: name, file: f, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", ms[i-1].file, ms[i].file)
		}
	}
	return ms, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrateFS(ctx, pool, migrationFiles)
}

// migrateFS applies the migrations the schema has not seen yet, each in its
// own transaction with its schema_migrations row, while holding a session
// advisory lock on the schema: a second bridge starting at the same time
// waits for the first to finish, then finds every migration applied. The
// lock is released (or its connection closed) before returning.
func migrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) (err error) {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if schema == nil {
		return errors.New("no schema to create the tables in: the search_path names none that exists " +
			"(create it with CREATE SCHEMA, or fix the DSN's search_path)")
	}
	// A migration may rewrite a large table, and the wait for another
	// replica's migration lasts as long as that: neither is bounded by
	// the statement timeout, only by ctx.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return err
	}
	locked := false
	defer func() {
		// The lock and the setting belong to the session: a connection
		// that cannot say it let go of them is closed, not pooled.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var uerr error
		if locked {
			_, uerr = conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, lockMigrate)
		}
		if uerr == nil {
			_, uerr = conn.Exec(uctx, `RESET statement_timeout`)
		}
		if uerr != nil {
			conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, lockMigrate); err != nil {
		return fmt.Errorf("wait for the migration lock: %w", err)
	}
	locked = true
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	// A database migrated by a newer bridge has tables and meanings this
	// binary does not know; writing to it could corrupt them (a rolling
	// upgrade runs the new replicas' migrations first; the old ones keep
	// running until replaced, but a restarted old one refuses to start).
	if len(ms) > 0 && len(applied) > 0 {
		if newest := int(slices.Max(applied)); newest > ms[len(ms)-1].version {
			return fmt.Errorf("the database is at schema version %d, newer than this bridge knows (%d): run the newer bridge, or restore a backup",
				newest, ms[len(ms)-1].version)
		}
	}
	for _, m := range ms {
		if slices.Contains(applied, int32(m.version)) {
			continue
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		}); err != nil {
			return fmt.Errorf("migration %s: %w", m.file, err)
		}
	}
	return nil
}
