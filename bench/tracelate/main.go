package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracelate:", err)
		os.Exit(1)
	}
}

// span is one state of one goroutine, in wall-clock ns.
type span struct {
	g     trace.GoID
	state trace.GoState
	a, b  int64
}

// cluster is a run of late packets.
type cluster struct {
	first, last, lastAt int64 // first and last send, last arrival (wall ns)
	n                   int
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tracelate", flag.ContinueOnError)
	tracePath := fs.String("trace", "", "runtime trace `FILE` (/debug/pprof/trace)")
	latePath := fs.String("late", "", "cloak-load -late `FILE`")
	match := fs.String("match", `pollWorker|writer\)\.run|newPollWake`, "`REGEXP` on a goroutine's stack: the goroutines to show")
	top := fs.Int("top", 5, "clusters to show")
	gap := fs.Duration("gap", 5*time.Millisecond, "late packets sent closer than this are one cluster")
	minSpan := fs.Duration("min", 300*time.Microsecond, "shortest state shown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tracePath == "" || *latePath == "" {
		return errors.New("-trace and -late are required")
	}
	re, err := regexp.Compile(*match)
	if err != nil {
		return fmt.Errorf("-match: %w", err)
	}
	spans, names, t0, t1, err := readTrace(*tracePath, re)
	if err != nil {
		return err
	}
	clusters, err := readLate(*latePath, gap.Nanoseconds(), t0, t1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "trace %.0f ms, %d goroutines matched, %d clusters of late packets inside it\n",
		float64(t1-t0)/1e6, len(names), len(clusters))
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].n > clusters[j].n })
	ms := func(t int64) float64 { return float64(t-t0) / 1e6 }
	for _, c := range clusters[:min(*top, len(clusters))] {
		fmt.Fprintf(out, "\n%d late packets sent %.1f..%.1f ms, last arrived %.1f ms\n", c.n, ms(c.first), ms(c.last), ms(c.lastAt))
		lo, hi := c.first-5e6, c.lastAt+1e6
		for _, s := range spans {
			if s.b < lo || s.a > hi || s.b-s.a < minSpan.Nanoseconds() {
				continue
			}
			fmt.Fprintf(out, "  G%-6d %-22s %-9v %9.2f..%9.2f (%.2f ms)\n", s.g, names[s.g], s.state, ms(s.a), ms(s.b), float64(s.b-s.a)/1e6)
		}
	}
	return nil
}

// readTrace returns the states of the goroutines whose stack matches re,
// their names (the matching function), and the trace's span, all on the
// wall clock.
func readTrace(path string, re *regexp.Regexp) (spans []span, names map[trace.GoID]string, t0, t1 int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer f.Close()
	r, err := trace.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	var (
		off     int64
		haveOff bool
		first   trace.Time
		lastT   trace.Time
		state   = map[trace.GoID]trace.GoState{}
		since   = map[trace.GoID]trace.Time{}
		checked = map[trace.GoID]bool{}
	)
	names = map[trace.GoID]string{}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		if first == 0 {
			first = ev.Time()
		}
		lastT = ev.Time()
		switch ev.Kind() {
		case trace.EventSync:
			if s := ev.Sync(); s.ClockSnapshot != nil && !haveOff {
				off, haveOff = s.ClockSnapshot.Wall.UnixNano()-int64(s.ClockSnapshot.Trace), true
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := st.Resource.Goroutine()
			_, to := st.Goroutine()
			if !checked[id] {
				// The goroutine's own stack: ev.Stack() is the stack of
				// whoever made the transition (the waker, for an unblock).
				if stk := st.Stack; stk != trace.NoStack {
					checked[id] = true
					for fr := range stk.Frames() {
						if re.MatchString(fr.Func) {
							names[id] = shortName(fr.Func)
							break
						}
					}
				}
			}
			if prev, ok := state[id]; ok && names[id] != "" {
				spans = append(spans, span{id, prev, int64(since[id]), int64(ev.Time())}) // trace time for now
			}
			state[id], since[id] = to, ev.Time()
		}
	}
	if !haveOff {
		return nil, nil, 0, 0, fmt.Errorf("%s: no clock snapshot (needs a trace from Go 1.25 or later)", path)
	}
	for i := range spans { // onto the wall clock, now that the offset is known
		spans[i].a += off
		spans[i].b += off
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
	return spans, names, int64(first) + off, int64(lastT) + off, nil
}

// shortName trims a function's package path: media.(*pollWorker).run.
func shortName(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		fn = fn[i+1:]
	}
	return fn
}

// readLate reads a cloak-load -late file into clusters lying inside
// [t0, t1].
func readLate(path string, gap, t0, t1 int64) ([]cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cs []cluster
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // header
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want arrival and send times", path, line)
		}
		at, err1 := strconv.ParseInt(fields[0], 10, 64)
		sent, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad times", path, line)
		}
		if sent < t0 || at > t1 {
			continue
		}
		if n := len(cs); n > 0 && sent-cs[n-1].last < gap {
			c := &cs[n-1]
			c.last, c.lastAt, c.n = sent, max(c.lastAt, at), c.n+1
			continue
		}
		cs = append(cs, cluster{first: sent, last: sent, lastAt: at, n: 1})
	}
	return cs, sc.Err()
}
