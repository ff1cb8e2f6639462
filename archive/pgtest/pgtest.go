// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb
// in a temporary directory (as the postgres OS user when the tests run
// as root, which PostgreSQL refuses to run as), a server on a free
// loopback port with its unix socket in that directory, one fresh
// database per test, all removed when the package's tests end.
//
// Debian's postgresql package provides initdb and pg_ctl
// (scripts/install-test-deps.sh installs it). Without them, and under
// go test -short, the PostgreSQL half of a test skips with a message; with
// CI set in the environment a missing initdb fails instead, so CI cannot
// pass while testing one engine only.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

type cluster struct {
	dir, data, bin, base string
	port                 int
	asPostgres           bool
	err                  error
}

var (
	once    sync.Once
	shared  *cluster
	counter atomic.Int64
)

// Main runs the package's tests, then stops the cluster if one was
// started: call it from TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil && shared.err == nil {
		shared.stop()
	}
	return code
}

// DSN returns the postgres:// URL of a new, empty database on the
// shared cluster, starting the cluster on first use. It skips the test
// under -short or when PostgreSQL is not installed.
func DSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL half skipped under -short")
	}
	bin := findBin()
	if bin == "" {
		msg := "PostgreSQL not installed (no initdb): apt-get install postgresql, or run scripts/install-test-deps.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	once.Do(func() { shared = start(bin) })
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	db, err := sql.Open("pgx", shared.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return shared.url(name)
}

// findBin returns the directory of initdb: on PATH, or the newest
// /usr/lib/postgresql/VERSION/bin.
func findBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[0])
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://cloak@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// run runs a PostgreSQL tool, as the postgres user when we are root.
func (c *cluster) run(timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func start(bin string) *cluster {
	c := &cluster{bin: bin, asPostgres: os.Geteuid() == 0}
	dir, err := os.MkdirTemp("", "cloak-pg-")
	if err != nil {
		c.err = err
		return c
	}
	c.dir, c.data = dir, filepath.Join(dir, "data")
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			c.err = fmt.Errorf("running as root needs the postgres user: %w", err)
			return c
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			c.err = err
			return c
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		c.err = err
		return c
	}
	// Trust on loopback and the socket only, fsync off: a test cluster
	// holds nothing worth a disk flush.
	if c.err = c.run(2*time.Minute, "initdb", "-D", c.data, "-U", "cloak", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); c.err != nil {
		return c
	}
	for try := 0; try < 5; try++ {
		c.port, c.err = freePort()
		if c.err != nil {
			return c
		}
		// max_connections: parallel tests each start nodes with a pool of
		// up to 8 connections and a LISTEN connection; the default 100
		// is too near.
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", c.port, dir)
		c.err = c.run(time.Minute, "pg_ctl", "-D", c.data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "50", "start")
		if c.err == nil {
			return c
		}
	}
	return c
}

func (c *cluster) stop() {
	_ = c.run(time.Minute, "pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(c.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
