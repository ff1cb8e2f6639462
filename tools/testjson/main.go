package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of test2json's output (go doc cmd/test2json).
type event struct {
	Time       time.Time
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Elapsed    float64 // seconds
	Output     string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testjson", flag.ContinueOnError)
	fs.SetOutput(stderr)
	slowest := fs.Int("slowest", 0, "print the N slowest top-level tests of the files (or stdin)")
	pkg := fs.String("pkg", "", "with -slowest: only packages whose import path contains this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *slowest <= 0 {
		if fs.NArg() > 0 || *pkg != "" {
			fmt.Fprintln(stderr, "usage: testjson < events | testjson -slowest N [-pkg SUBSTR] [FILE...]")
			return 2
		}
		if err := filter(stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "testjson:", err)
			return 1
		}
		return 0
	}
	var inputs []io.Reader
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "testjson:", err)
			return 1
		}
		defer f.Close()
		inputs = append(inputs, f)
	}
	if len(inputs) == 0 {
		inputs = append(inputs, stdin)
	}
	if err := printSlowest(io.MultiReader(inputs...), stdout, *slowest, *pkg); err != nil {
		fmt.Fprintln(stderr, "testjson:", err)
		return 1
	}
	return 0
}

// lines calls fn for each line of r, decoded when it is an event; a line
// that is not JSON (go test prints a few of its own) comes as raw.
func lines(r io.Reader, fn func(e *event, raw string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fn(nil, sc.Text())
			continue
		}
		fn(&e, "")
	}
	return sc.Err()
}

// filter prints the stream as go test without -v would: package lines and
// build output as they come, a test's output only when it fails, and, at
// the end, the output of tests that never finished (a timeout's panic, a
// crash), so no failure is lost from the log.
func filter(r io.Reader, w io.Writer) error {
	held := map[string]*strings.Builder{} // package + test → its output so far
	var order []string
	err := lines(r, func(e *event, raw string) {
		if e == nil {
			fmt.Fprintln(w, raw)
			return
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "":
			if e.Action == "output" && e.Output != "PASS\n" { // go test without -v prints no bare PASS
				fmt.Fprint(w, e.Output)
			}
		default:
			key := e.Package + " " + e.Test
			b := held[key]
			if b == nil {
				b = &strings.Builder{}
				held[key] = b
				order = append(order, key)
			}
			switch e.Action {
			case "output":
				b.WriteString(e.Output)
			case "fail":
				fmt.Fprint(w, b.String())
				delete(held, key)
			case "pass", "skip":
				delete(held, key)
			}
		}
	})
	for _, key := range order {
		if b, ok := held[key]; ok && b.Len() > 0 {
			fmt.Fprintf(w, "--- unfinished: %s\n%s", key, b.String())
		}
	}
	return err
}

// result is one finished top-level test.
type result struct {
	pkg, test, action string
	elapsed           float64
}

// printSlowest prints the n slowest top-level tests and the packages'
// wall times. A test's time is its wall time from its run event to its
// end, less the time it waited paused for its parallel turn: go test's
// own Elapsed for a test whose subtests run in parallel counts none of
// them (it says 0 s for a test that took a minute).
func printSlowest(r io.Reader, w io.Writer, n int, pkg string) error {
	type span struct {
		start, paused time.Time
		waited        time.Duration
	}
	open := map[string]*span{}
	var tests, pkgs []result
	err := lines(r, func(e *event, _ string) {
		if e == nil || !strings.Contains(e.Package, pkg) {
			return
		}
		if e.Test == "" {
			if e.Action == "pass" || e.Action == "fail" {
				pkgs = append(pkgs, result{pkg: e.Package, action: e.Action, elapsed: e.Elapsed})
			}
			return
		}
		if strings.Contains(e.Test, "/") {
			return
		}
		key := e.Package + " " + e.Test
		sp := open[key]
		switch e.Action {
		case "run":
			open[key] = &span{start: e.Time}
		case "pause":
			if sp != nil {
				sp.paused = e.Time
			}
		case "cont":
			if sp != nil && !sp.paused.IsZero() {
				sp.waited += e.Time.Sub(sp.paused)
				sp.paused = time.Time{}
			}
		case "pass", "fail":
			took := e.Elapsed
			if sp != nil && !sp.start.IsZero() && !e.Time.IsZero() {
				took = max(took, (e.Time.Sub(sp.start) - sp.waited).Seconds())
			}
			delete(open, key)
			tests = append(tests, result{e.Package, e.Test, e.Action, took})
		}
	})
	if err != nil {
		return err
	}
	sort.SliceStable(tests, func(i, j int) bool { return tests[i].elapsed > tests[j].elapsed })
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].elapsed > pkgs[j].elapsed })
	var sum float64
	for _, t := range tests {
		sum += t.elapsed
	}
	fmt.Fprintf(w, "%d slowest of %d tests (sum of their times %.0fs):\n", min(n, len(tests)), len(tests), sum)
	for _, t := range tests[:min(n, len(tests))] {
		fmt.Fprintf(w, "%8.1fs  %-4s  %s  %s\n", t.elapsed, t.action, t.test, t.pkg)
	}
	for _, p := range pkgs[:min(3, len(pkgs))] {
		fmt.Fprintf(w, "%8.1fs  %-4s  package %s\n", p.elapsed, p.action, p.pkg)
	}
	return nil
}
