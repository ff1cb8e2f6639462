package server

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// durField matches zerolog's duration fields (Dur, Durs, TimeDiff), which
// print a bare number of milliseconds: "grace=10000" says nothing about
// its unit. Log a duration as Str(name, d.String()) ("10s") instead.
var durField = regexp.MustCompile(`\.(Dur|Durs|TimeDiff)\(`)

// TestLogDurationsCarryTheirUnit reads every Go source file of the module
// and fails on a zerolog duration field.
func TestLogDurationsCarryTheirUnit(t *testing.T) {
	root := ".."
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "logunits_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if durField.MatchString(line) {
				bad = append(bad, path+":"+itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("a duration logged without its unit (use Str(name, d.String())): %s", b)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
