package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"time"

	"github.com/acp-bridge/bridge/storage/internal/migrate"
)

// The schema: migrations/NNNN_name.sql, applied in order by
// storage/internal/migrate (the Postgres driver has its own list: the
// dialects differ).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateFS applies the migrations of fsys db has not seen yet, each in
// its own transaction together with its schema_migrations row, so a failed
// one leaves the schema as the previous one left it.
func migrateFS(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := migrate.Load(fsys)
	if err != nil {
		return err
	}
	return migrate.Run(ctx, migrator{db}, ms)
}

// migrator is the database for migrate.Run.
type migrator struct{ db *sql.DB }

func (m migrator) Init(ctx context.Context) error {
	_, err := m.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`)
	return err
}

func (m migrator) Applied(ctx context.Context) ([]int, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

func (m migrator) Apply(ctx context.Context, mg migrate.Migration) error {
	// BEGIN IMMEDIATE (the pool's _txlock): two processes opening the same
	// new file queue here, and the second sees the first's row below.
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var done bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, mg.Version).Scan(&done); err != nil {
		return err
	}
	if done {
		return nil
	}
	if _, err := tx.ExecContext(ctx, mg.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		mg.Version, mg.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}
