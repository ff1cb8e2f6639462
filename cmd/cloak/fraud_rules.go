package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/fraud"
)

const fraudRulesUsage = `usage: cloak fraud rules check [-q] FILE|DIR
       cloak fraud rules load FILE|DIR     replace the rules in the database
       cloak fraud rules list [-json]
       cloak fraud rules history [-limit N] [-json]
(load, list and history also take -config FILE and -data DIR, as serve)`

// fraudRules implements `cloak fraud rules load|list|history`: the rules
// in the archive's database, which every serve sharing it reloads within
// 5 s. load compiles the whole file first (a rule refused names its file,
// line and position, and nothing is stored), then replaces the set in one
// transaction with the history and an audit row naming the CLI's user.
func fraudRules(cmd string, args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	limit := 0
	fs := newArchiveFlagSet("fraud rules "+cmd, stderr, &f)
	if cmd == "history" {
		fs.IntVar(&limit, "limit", 100, "at most `N` changes, newest first")
	}
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if (cmd == "load") != (len(pos) == 1) || len(pos) > 1 {
		fmt.Fprintln(stderr, fraudRulesUsage)
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "cloak fraud rules %s: %v\n", cmd, err)
		return code
	}
	var set *fraud.RuleSet
	if cmd == "load" {
		if set, err = fraud.LoadRules(pos[0]); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if line != "" {
					fmt.Fprintln(stdout, line)
				}
			}
			return fail(1, fmt.Errorf("%s refused: the rules in the database are unchanged", pos[0]))
		}
	}
	s, err := openArchive(f)
	if err != nil {
		return fail(2, err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch cmd {
	case "load":
		res, err := s.ReplaceRules(ctx, set.Rules(), cliActor(), pos[0])
		if err != nil {
			return fail(1, err)
		}
		if f.json {
			return printJSON(stdout, stderr, res)
		}
		if res.Unchanged() {
			fmt.Fprintf(stdout, "unchanged: version %d already holds these %d rule(s)\n", res.Version, set.Len())
			return 0
		}
		fmt.Fprintf(stdout, "version %d: %d rule(s); added %v, changed %v, removed %v (serve applies it within 5 s)\n",
			res.Version, set.Len(), res.Added, res.Changed, res.Removed)
	case "list":
		v, rules, err := s.Rules(ctx)
		if err != nil {
			return fail(1, err)
		}
		if f.json {
			if rules == nil {
				rules = []fraud.Rule{}
			}
			return printJSON(stdout, stderr, map[string]any{"version": v, "rules": rules})
		}
		fmt.Fprintf(stdout, "version %d, %d rule(s)\n", v, len(rules))
		for _, r := range rules {
			state := ""
			if r.Disabled {
				state = " (disabled)"
			}
			fmt.Fprintf(stdout, "%s\t%d\t%s%s\n", r.Name, r.Score, r.When, state)
		}
	case "history":
		hist, err := s.RulesHistory(ctx, limit)
		if err != nil {
			return fail(1, err)
		}
		if f.json {
			if hist == nil {
				hist = []archive.RuleChange{}
			}
			return printJSON(stdout, stderr, hist)
		}
		for _, h := range hist {
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", h.Version, h.At.Format(time.RFC3339), h.Actor, h.Action, h.Rule.Name, h.Rule.Score, h.Rule.When)
		}
	}
	return 0
}
