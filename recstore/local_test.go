package recstore

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture makes a recordings directory with one recording in a day
// subdirectory and, beside it (outside), a file of the same shape.
func fixture(t *testing.T) (dir, rec, outside string) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "recordings")
	if err := os.MkdirAll(filepath.Join(dir, "2026-12-07"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec = filepath.Join(dir, "2026-12-07", "call-1.wav")
	if err := os.WriteFile(rec, []byte("RIFF-inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside = filepath.Join(root, "secret.wav")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, rec, outside
}

func TestLocalOpenAndStat(t *testing.T) {
	dir, rec, _ := fixture(t)
	l := Local{Dir: dir}
	f, info, err := l.Open(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "RIFF-inside" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := f.Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if info.Key != rec || info.Size != int64(len("RIFF-inside")) || info.ModTime.IsZero() {
		t.Errorf("Open info = %+v", info)
	}
	st, err := l.Stat(context.Background(), rec)
	if err != nil || st != info {
		t.Errorf("Stat = %+v, %v; Open said %+v", st, err, info)
	}
}

// TestLocalRefusesEscapes: a key read from the database never reaches a
// file outside the directory, lexically or through a symbolic link.
func TestLocalRefusesEscapes(t *testing.T) {
	dir, _, outside := fixture(t)
	link := filepath.Join(dir, "2026-12-07", "link.wav")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	linkedDir := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(filepath.Dir(outside), linkedDir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		outside,
		filepath.Join(dir, "..", "secret.wav"),
		filepath.Join(dir, "2026-12-07", "..", "..", "secret.wav"),
		link,
		filepath.Join(linkedDir, "secret.wav"),
		filepath.Join(dir, "2026-12-07"), // a directory, not a file
		"/etc/passwd",
	} {
		if f, _, err := (Local{Dir: dir}).Open(ctx, key); !errors.Is(err, ErrOutside) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%s) = %v, want ErrOutside", key, err)
		}
		if _, err := (Local{Dir: dir}).Stat(ctx, key); !errors.Is(err, ErrOutside) {
			t.Errorf("Stat(%s) = %v, want ErrOutside", key, err)
		}
	}
	for _, key := range []string{outside, filepath.Join(dir, "..", "secret.wav"), filepath.Join(linkedDir, "secret.wav")} {
		if err := (Local{Dir: dir}).Remove(ctx, key); !errors.Is(err, ErrOutside) {
			t.Errorf("Remove(%s) = %v, want ErrOutside", key, err)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the file outside is gone: %v", err)
	}
	// A link inside is removed itself, never its target.
	if err := (Local{Dir: dir}).Remove(ctx, link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link survived Remove: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("Remove of a link removed its target: %v", err)
	}
	// No directory: every key refused.
	if _, _, err := (Local{}).Open(ctx, outside); !errors.Is(err, ErrOutside) {
		t.Errorf("Open with no Dir = %v, want ErrOutside", err)
	}
	if err := (Local{}).Remove(ctx, outside); !errors.Is(err, ErrOutside) {
		t.Errorf("Remove with no Dir = %v, want ErrOutside", err)
	}
}

// TestLocalNotFound: a missing key is ErrNotFound (and fs.ErrNotExist)
// naming the key, for each method.
func TestLocalNotFound(t *testing.T) {
	dir, _, _ := fixture(t)
	l := Local{Dir: dir}
	ctx := context.Background()
	for _, key := range []string{filepath.Join(dir, "2026-12-07", "gone.wav"), filepath.Join(dir, "no-day", "gone.wav")} {
		_, _, errOpen := l.Open(ctx, key)
		_, errStat := l.Stat(ctx, key)
		errRemove := l.Remove(ctx, key)
		for name, err := range map[string]error{"Open": errOpen, "Stat": errStat, "Remove": errRemove} {
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), key) {
				t.Errorf("%s(%s) = %v, want ErrNotFound naming the key", name, key, err)
			}
		}
	}
	err := Local{Dir: filepath.Join(dir, "missing")}.Walk(ctx, func(string) error { return nil })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Walk of a missing directory = %v, want ErrNotFound", err)
	}
}

func TestLocalRemove(t *testing.T) {
	dir, rec, _ := fixture(t)
	l := Local{Dir: dir}
	if err := l.Remove(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rec); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the recording survived Remove: %v", err)
	}
}

// TestLocalWalk: every file below Dir, none of a Skip subdirectory at the
// top (a deeper one of the same name is walked), an error from fn ends
// the walk, and so does a cancelled context.
func TestLocalWalk(t *testing.T) {
	dir, rec, _ := fixture(t)
	mk := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	side := mk("2026-12-07/call-1.json")
	mk("quarantine/bad.wav")
	deep := mk("2026-12-07/quarantine/kept.wav")
	l := Local{Dir: dir, Skip: []string{"quarantine"}}
	var got []string
	if err := l.Walk(context.Background(), func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{rec, side, deep}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := l.Walk(context.Background(), func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk after fn's error = %v after %d calls, want stop after 1", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Walk(ctx, func(string) error { t.Error("fn called after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with a cancelled context = %v", err)
	}
}
