// Package recstore is where finished recordings are kept: the Store
// interface the archive's download, MP3 encoding, purge, deletions and
// reindex walk use once a recording's sidecar is sealed, and Local, the
// recordings directory (recording.dir) on a local or shared filesystem.
//
// The recorder does not write through a Store: it appends to a local
// file, rewrites the WAV header, fsyncs and is repaired after a crash
// (package recorder), none of which an object store offers. A Store holds
// recordings once they are finished; an S3-compatible implementation
// would upload a recording after its sidecar is sealed (docs/SCALE.md).
package recstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// ErrNotFound: no recording is stored under the key. It wraps
// fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) holds too.
var ErrNotFound = fmt.Errorf("recstore: no such recording: %w", fs.ErrNotExist)

// ErrOutside: the key names something the store must not touch (a path
// outside the recordings directory, through a symbolic link or not, or
// not a regular file). A key read from the database is not trusted.
var ErrOutside = errors.New("recstore: the key is not a file inside the recordings store")

// Info describes a stored recording: what an HTTP Range answer needs
// (size, modification time; RFC 9110 §8.8.2 Last-Modified).
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store holds finished recordings (a WAV and its sidecar, each under its
// own key). Keys are what the archive's recordings index holds in its
// file and sidecar columns. Every method refuses a key outside the store
// with ErrOutside and answers ErrNotFound for a key nothing is stored
// under; Remove of a missing key is ErrNotFound too, which callers
// deleting a recording treat as done.
type Store interface {
	// Open opens key for reading, seekable (for Range requests and the
	// WAV parser), with its Info.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, Info, error)
	// Stat describes key without opening it.
	Stat(ctx context.Context, key string) (Info, error)
	// Remove deletes key.
	Remove(ctx context.Context, key string) error
	// Walk calls fn with the key of every stored object, in no promised
	// order, until fn returns an error (returned by Walk) or ctx ends.
	Walk(ctx context.Context, fn func(key string) error) error
}
