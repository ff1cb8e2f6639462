package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cloak-voip/cloak/archive"
)

// archiveDevGenerate implements the hidden development command `cloak
// archive dev-generate -n N [-seed S] [-days D]`: it fills the archive of
// the configuration (creating the key and SQLite database when missing)
// with N synthetic interactions (archive.Generate: ids gen-<seed>-…,
// callers +4477009nnnnn, customer ids C-nnnnnnn) for load tests and the
// 1,000,000-row search figures in docs/PERFORMANCE.md. Not listed in the
// usage: it is for test archives only.
func archiveDevGenerate(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("dev-generate", stderr, &f)
	n := fs.Int("n", 0, "how many synthetic interactions to add")
	seed := fs.Uint64("seed", 1, "random seed (a second run with the same seed adds nothing)")
	days := fs.Int("days", 180, "spread over this many days before now")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || *n <= 0 || *n > 100_000_000 || *days <= 0 {
		fmt.Fprintln(stderr, "usage: cloak archive dev-generate -n N [-seed S] [-days D] [-config FILE] [-data DIR]")
		return 2
	}
	cfg, err := loadConfig(serveFlags{config: f.config, data: f.data})
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive dev-generate: %v\n", err)
		return 2
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, true)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive dev-generate: %v\n", err)
		return 2
	}
	ctx := context.Background()
	s, err := archive.Open(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive dev-generate: %v\n", err)
		return 1
	}
	defer s.Close()
	start := time.Now()
	err = s.Generate(ctx, archive.GenerateOptions{N: *n, Seed: *seed, Days: *days, Progress: func(done int) {
		if done%100_000 == 0 {
			fmt.Fprintf(stderr, "%d interactions in %s\n", done, time.Since(start).Round(time.Second))
		}
	}})
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive dev-generate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d synthetic interactions written in %s\n", *n, time.Since(start).Round(time.Millisecond))
	return 0
}
