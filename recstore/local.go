package recstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Local is a Store over a directory (recording.dir): a key is a file's
// path (as the recorder wrote it and the archive indexed it), which must
// lie inside Dir, symbolic links resolved on both sides.
type Local struct {
	// Dir is the recordings directory. Empty refuses every key.
	Dir string
	// Skip names subdirectories of Dir (not deeper) Walk does not enter,
	// such as the recorder's quarantine.
	Skip []string
}

var _ Store = Local{}

// Within reports whether path is dir or below it, both made absolute,
// symbolic links not followed: a lexical check, the first of Local's.
func Within(dir, path string) bool {
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(absPath(dir), absPath(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// absPath is p made absolute against the working directory (p itself if
// that fails).
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// notFound maps a missing file to ErrNotFound, naming the key.
func notFound(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return err
}

// resolve returns key's real path when key and its real path (symbolic
// links resolved) both lie inside Dir's real path.
func (l Local) resolve(key string) (string, error) {
	if !Within(l.Dir, key) {
		return "", ErrOutside
	}
	realDir, err := filepath.EvalSymlinks(l.Dir)
	if err != nil {
		return "", fmt.Errorf("recordings directory: %w", err)
	}
	realPath, err := filepath.EvalSymlinks(key)
	if err != nil {
		return "", notFound(key, err)
	}
	if !Within(realDir, realPath) {
		return "", ErrOutside
	}
	return realPath, nil
}

// Open opens key when it is a regular file inside Dir, symbolic links
// resolved on both sides (a link in the directory pointing out of it is
// refused).
func (l Local) Open(_ context.Context, key string) (io.ReadSeekCloser, Info, error) {
	p, err := l.resolve(key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, Info{}, notFound(key, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, Info{}, ErrOutside
	}
	return f, Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Stat describes key under Open's checks.
func (l Local) Stat(_ context.Context, key string) (Info, error) {
	p, err := l.resolve(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Info{}, notFound(key, err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, ErrOutside
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Remove deletes key when it lies inside Dir and its parent directory,
// symbolic links resolved, does too (so a linked subdirectory cannot
// lead the deletion out). A symbolic link named by key is removed
// itself, never its target.
func (l Local) Remove(_ context.Context, key string) error {
	if !Within(l.Dir, key) {
		return ErrOutside
	}
	realDir, err := filepath.EvalSymlinks(l.Dir)
	if err != nil {
		return notFound(key, err)
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(absPath(key)))
	if err != nil {
		return notFound(key, err)
	}
	if !Within(realDir, parent) {
		return ErrOutside
	}
	if err := os.Remove(key); err != nil {
		return notFound(key, err)
	}
	return nil
}

// Walk calls fn with the path of every file below Dir (not directories,
// not the Skip subdirectories; keys are Dir joined with the file's
// relative path). A subdirectory that vanished or cannot be read is
// passed over; Dir itself missing is ErrNotFound.
func (l Local) Walk(ctx context.Context, fn func(key string) error) error {
	if l.Dir == "" {
		return ErrOutside
	}
	root := filepath.Clean(l.Dir)
	err := filepath.WalkDir(l.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == l.Dir {
				return err
			}
			return nil
		}
		if d.IsDir() {
			if filepath.Dir(path) == root {
				for _, s := range l.Skip {
					if d.Name() == s {
						return fs.SkipDir
					}
				}
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(path)
	})
	return notFound(l.Dir, err)
}
