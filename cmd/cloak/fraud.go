package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cloak-voip/cloak/fraud"
)

// runFraud implements `cloak fraud rules check [-q] FILE|DIR`: it loads and
// compiles the fraud rules (a YAML file, or every *.yaml/*.yml in a
// directory) and prints one line per refused rule, naming the file, line,
// rule and position. Exit status: 0 all good, 1 rules refused, 2 usage.
// The data, holds, release and reject commands of issue 24 are not built
// yet.
func runFraud(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: cloak fraud rules check [-q] FILE|DIR")
	}
	if len(args) < 2 || args[0] != "rules" || args[1] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			usage()
			return 0
		}
		usage()
		return 2
	}
	fl := flag.NewFlagSet("fraud rules check", flag.ContinueOnError)
	fl.SetOutput(stderr)
	quiet := fl.Bool("q", false, "print nothing when all rules are valid")
	fl.Usage = usage
	if err := fl.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() != 1 {
		usage()
		return 2
	}
	set, err := fraud.LoadRules(fl.Arg(0))
	if err != nil {
		n := 0
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" {
				fmt.Fprintln(stdout, line)
				n++
			}
		}
		fmt.Fprintf(stderr, "cloak fraud rules check: %d problem(s) in %s\n", n, fl.Arg(0))
		return 1
	}
	if !*quiet {
		names := make([]string, 0, set.Len())
		for _, r := range set.Rules() {
			names = append(names, r.Name)
		}
		fmt.Fprintf(stdout, "ok: %d rule(s) in %s: %v\n", set.Len(), fl.Arg(0), names)
	}
	return 0
}
