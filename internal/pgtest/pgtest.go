// Package pgtest gives tests a PostgreSQL schema of their own on the
// server BRIDGE_TEST_POSTGRES_DSN names (.ci/run sets it to the machine's
// local server). Without the variable the tests that need it are skipped;
// with it set and the server unreachable they fail, so CI cannot pass
// without having run them. Each test works in a schema created for it and
// dropped after, so tests run in parallel and leave nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Env names the test server's DSN.
const Env = "BRIDGE_TEST_POSTGRES_DSN"

var (
	reachOnce sync.Once
	reachErr  error
)

// DSN returns the test server's DSN, or skips t without one.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		t.Skipf("%s is not set: no PostgreSQL server to test against (e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')",
			Env, Env)
	}
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := Connect(ctx, dsn)
		if err != nil {
			reachErr = err
			return
		}
		reachErr = conn.Ping(ctx)
		conn.Close(ctx)
	})
	if reachErr != nil {
		t.Fatalf("%s is set, but its server cannot be reached: %v", Env, reachErr)
	}
	return dsn
}

// TB is what Schema needs of testing.TB (the load tool has a stand-in).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Schema creates a schema named prefix + a random suffix in the database
// dsn names, dropped when t ends, and returns dsn with its search_path set
// to it.
func Schema(t TB, dsn, prefix string) string {
	t.Helper()
	var random [6]byte
	_, _ = rand.Read(random[:])
	schema := prefix + hex.EncodeToString(random[:])
	if err := Exec(dsn, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := Exec(dsn, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Fatalf("postgres: %v", err)
		}
	})
	return WithParam(dsn, "search_path", schema)
}

// Exec runs one statement on a connection of its own.
func Exec(dsn, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// Connect opens one connection to dsn, which may carry pgxpool's
// parameters (pool_max_conns …).
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// WithParam adds a parameter to a URL or key=value DSN.
func WithParam(dsn, name, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set(name, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " " + name + "=" + value
}
