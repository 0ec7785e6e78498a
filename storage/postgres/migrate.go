package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/acp-bridge/bridge/storage/internal/migrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema: migrations/NNNN_name.sql, applied in order by
// storage/internal/migrate, like the SQLite driver's (its own list: the
// two dialects differ, and a Postgres database starts at today's schema,
// with none of SQLite's history).
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

// migrateFS applies the migrations the schema has not seen yet, each in its
// own transaction with its schema_migrations row, while holding a session
// advisory lock on the schema: a second bridge starting at the same time
// waits for the first to finish, then finds every migration applied. The
// lock is released (or its connection closed) before returning.
func migrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) (err error) {
	ms, err := migrate.Load(fsys)
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
	// Under the lock nobody else migrates: what Applied reads stays true.
	return migrate.Run(ctx, migrator{conn}, ms)
}

// migrator is the database for migrate.Run: the connection that holds the
// migration lock.
type migrator struct{ conn *pgxpool.Conn }

func (m migrator) Init(ctx context.Context) error {
	_, err := m.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`)
	return err
}

func (m migrator) Applied(ctx context.Context) ([]int, error) {
	rows, err := m.conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

func (m migrator) Apply(ctx context.Context, mg migrate.Migration) error {
	return pgx.BeginFunc(ctx, m.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, mg.SQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, mg.Version, mg.Name)
		return err
	})
}
