package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/fraud"
)

// runFraud implements `cloak fraud rules check [-q] FILE|DIR`: it loads and
// compiles the fraud rules (a YAML file, or every *.yaml/*.yml in a
// directory) and prints one line per refused rule, naming the file, line,
// rule and position. Exit status: 0 all good, 1 rules refused, 2 usage.
// The data, holds, release, reject, hold and comment commands are in
// fraud_holds.go, rules load, list and history in fraud_rules.go.
func runFraud(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "data":
			return fraudData(args[1:], stdout, stderr)
		case "holds":
			return fraudHolds(args[1:], stdout, stderr)
		case "release":
			return fraudDecide(archive.HoldReleased, args[1:], stdout, stderr)
		case "reject":
			return fraudDecide(archive.HoldRejected, args[1:], stdout, stderr)
		case "hold":
			return fraudHoldManual(args[1:], stdout, stderr)
		case "comment":
			return fraudComment(args[1:], stdout, stderr)
		case "rules":
			if len(args) > 1 && (args[1] == "load" || args[1] == "list" || args[1] == "history") {
				return fraudRules(args[1], args[2:], stdout, stderr)
			}
		}
	}
	quiet, path, code, ok := checkArgs(args, []string{"rules", "check"}, "cloak fraud rules check [-q] FILE|DIR", "rules", stderr, nil)
	if !ok {
		return code
	}
	set, err := fraud.LoadRules(path)
	if err != nil {
		n := 0
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" {
				fmt.Fprintln(stdout, line)
				n++
			}
		}
		fmt.Fprintf(stderr, "cloak fraud rules check: %d problem(s) in %s\n", n, path)
		return 1
	}
	if !quiet {
		names := make([]string, 0, set.Len())
		for _, r := range set.Rules() {
			names = append(names, r.Name)
		}
		fmt.Fprintf(stdout, "ok: %d rule(s) in %s: %v\n", set.Len(), path, names)
	}
	return 0
}
