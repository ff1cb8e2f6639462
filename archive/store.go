package archive

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// Engines of a Store.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Sentinel errors.
var (
	// ErrNotFound: no interaction has that id.
	ErrNotFound = errors.New("archive: no such interaction")
	// ErrDSN: the data source name is neither a SQLite path nor a
	// postgres:// URL.
	ErrDSN = errors.New("archive: bad dsn")
	// ErrKey: the archive key file is missing, unreadable or too short.
	ErrKey = errors.New("archive: bad key")
)

//go:embed migrations
var migrations embed.FS

// Options configure Open.
type Options struct {
	// DSN is a SQLite file path (optionally "sqlite:PATH") or a
	// postgres:// URL.
	DSN string
	// Key is the HMAC-SHA256 key of data tokens and audit rows (at least
	// 16 bytes; LoadKey).
	Key []byte
	// Policy is the participant-data policy applied to what is written.
	Policy Policy
	// BusyTimeout is how long a SQLite statement waits for another
	// process's lock (the CLI beside serve); 0 means 5 s.
	BusyTimeout time.Duration
}

// Store is an open archive database.
type Store struct {
	db     *sql.DB
	engine string
	key    []byte
	policy Policy

	migrateMu sync.Mutex
	migrated  atomic.Bool

	// velocityStmts caches the prepared velocity statements, one per
	// combination of the keys a screening has (velocityQuery).
	velocityStmts sync.Map // int → *sql.Stmt
}

// Open opens (creating a SQLite file if needed) the archive and applies
// the embedded migrations that are missing. On PostgreSQL a session
// advisory lock keeps two nodes starting together from migrating at once.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Key) < 16 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 16", ErrKey, len(o.Key))
	}
	s, err := OpenDeferred(o)
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("archive: connect %s: %w", s.engine, err)
	}
	if err := s.ensure(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// OpenDeferred returns a Store without connecting: the first write
// (Insert, Audit, Purge) connects and applies the migrations, and fails
// until the database is there. A node whose shared database is down at
// start takes calls and queues what they leave (Writer) instead of
// refusing to start.
func OpenDeferred(o Options) (*Store, error) {
	if len(o.Key) < 16 {
		return nil, fmt.Errorf("%w: %d bytes, want at least 16", ErrKey, len(o.Key))
	}
	engine, driver, dsn, err := parseDSN(o.DSN, o.BusyTimeout)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", engine, err)
	}
	if engine == SQLite {
		// One connection writes at a time anyway; a small pool keeps
		// readers (search) beside the writer in WAL mode.
		db.SetMaxOpenConns(4)
	} else {
		db.SetMaxOpenConns(8)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Store{db: db, engine: engine, key: append([]byte(nil), o.Key...), policy: o.Policy}, nil
}

// ensure applies the migrations once per Store.
func (s *Store) ensure(ctx context.Context) error {
	if s.migrated.Load() {
		return nil
	}
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated.Load() {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	s.migrated.Store(true)
	return nil
}

// parseDSN returns the engine, the database/sql driver name and its DSN.
func parseDSN(dsn string, busy time.Duration) (engine, driver, out string, err error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if _, err := url.Parse(dsn); err != nil {
			return "", "", "", fmt.Errorf("%w: not a postgres URL", ErrDSN) // err would echo a password
		}
		return Postgres, "pgx", dsn, nil
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	if path == "" || strings.Contains(path, "://") {
		return "", "", "", fmt.Errorf("%w: want a SQLite path or postgres://…", ErrDSN)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", "", "", fmt.Errorf("archive: %w", err)
	}
	if busy <= 0 {
		busy = 5 * time.Second
	}
	// WAL: readers (the CLI) never block the writer (serve) and a crash
	// loses no committed transaction; synchronous NORMAL is durable in WAL
	// but for the last transactions before a power cut; immediate
	// transactions take the write lock at BEGIN, so two writers wait on
	// busy_timeout instead of failing on a lock upgrade.
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)",
		"busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return SQLite, "sqlite", "file:" + path + "?" + q.Encode(), nil
}

// migrate applies the embedded migrations of the store's engine.
func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.engine)
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.engine == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("archive: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("archive: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("archive: migrate: %w", err)
	}
	return nil
}

// Engine is SQLite or Postgres.
func (s *Store) Engine() string { return s.engine }

// DB is the database handle (tests, tools).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// rowScanner is what a scan function reads a row from (*sql.Row and
// *sql.Rows).
type rowScanner interface{ Scan(...any) error }

// queryAll runs query (with ? placeholders, rewritten for the engine) and
// scans every row with scan; errors are wrapped as "archive: what: …".
func queryAll[T any](ctx context.Context, s *Store, what, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", what, err)
	}
	return out, nil
}

// q rewrites a query written with ? placeholders for the engine
// (PostgreSQL numbers them: $1, $2, …). No query here has a ? inside a
// string literal.
func (s *Store) q(query string) string {
	if s.engine != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func msDuration(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// Migrate connects if need be and applies the embedded migrations that
// are missing (once per Store): for a Store from OpenDeferred whose
// tables another package (cluster) needs before the first write.
func (s *Store) Migrate(ctx context.Context) error { return s.ensure(ctx) }
