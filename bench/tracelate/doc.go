// Command tracelate lines up a Go runtime trace of a relay with the load
// tool's log of late packets (cloak-load -late), to show what the relay's
// goroutines were doing while packets waited. It is how the poll
// workers' 10 ms netpoll stalls were found (docs/PERFORMANCE.md, "The
// latency tail").
//
//	tracelate -trace cloak.trace -late late.tsv [-match REGEXP] [-top N]
//
// Late packets whose send times lie within -gap of each other form a
// cluster; for the -top largest clusters that fall inside the trace it
// prints every state (running, runnable, waiting, syscall) longer than
// -min of the goroutines whose stack matches -match, from a little before
// the cluster's first send to its last arrival. Times are milliseconds
// from the trace's first event; the trace's clock snapshot (Go 1.25 and
// later) maps them onto the wall clock of the late log.
package main
