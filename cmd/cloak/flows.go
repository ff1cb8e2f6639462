package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/ivr"
)

// runFlows implements `cloak flows check DIR`: it loads and validates every
// *.yaml/*.yml flow in DIR and prints one line per problem, naming the file
// and step. Exit status: 0 all good, 1 problems found, 2 usage error or an
// unreadable directory.
func runFlows(args []string, stdout, stderr io.Writer) int {
	var cfgFile *string
	quiet, dir, code, ok := checkArgs(args, []string{"check"}, "cloak flows check [-q] [-config FILE] DIR", "flows", stderr, func(fl *flag.FlagSet) {
		cfgFile = fl.String("config", "", "also check the flows against FILE's flows.endpoints: a step that sends a card may use only https or loopback")
	})
	if !ok {
		return code
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "cloak flows check: %s is not a readable directory\n", dir)
		return 2
	}
	set, err := ivr.LoadDir(os.DirFS(dir), ".")
	if err == nil && *cfgFile != "" {
		cfg, cerr := config.Load(*cfgFile)
		if cerr != nil {
			fmt.Fprintf(stderr, "cloak flows check: %v\n", cerr)
			return 2
		}
		err = set.CheckEndpoints(cfg.Flows.Endpoints)
	}
	var ve *ivr.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stderr, "cloak flows check: %d problem(s) in %s\n", len(ve.Problems), dir)
		return 1
	case errors.Is(err, ivr.ErrNoFlows):
		fmt.Fprintf(stderr, "cloak flows check: no flows in %s: it holds no *.yaml or *.yml file\n", describeDir(dir))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "cloak flows check: %s: %v\n", describeDir(dir), err)
		return 1
	}
	if !quiet {
		fmt.Fprintf(stdout, "ok: %d flow(s) in %s: %v\n", len(set.Names()), dir, set.Names())
	}
	return 0
}

// describeDir names dir as given and, when relative, where that is.
func describeDir(dir string) string {
	if filepath.IsAbs(dir) {
		return dir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return fmt.Sprintf("%s (%s)", dir, abs)
	}
	return dir
}

// checkArgs parses a check command's arguments (`cloak flows check`,
// `cloak fraud rules check`): the command's words, then [-q], the flags
// the command adds (flags, may be nil) and one operand. When ok is false the command returns code (0 for help, 2 for a
// usage error) at once.
func checkArgs(args, words []string, usageLine, what string, stderr io.Writer, flags func(*flag.FlagSet)) (quiet bool, operand string, code int, ok bool) {
	usage := func() { fmt.Fprintln(stderr, "usage: "+usageLine) }
	if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			usage()
			return false, "", 0, false
		}
		usage()
		return false, "", 2, false
	}
	fl := flag.NewFlagSet(strings.Join(append([]string{what}, words...), " "), flag.ContinueOnError)
	fl.SetOutput(stderr)
	q := fl.Bool("q", false, "print nothing when all "+what+" are valid")
	if flags != nil {
		flags(fl)
	}
	fl.Usage = usage
	if err := fl.Parse(args[len(words):]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, "", 0, false
		}
		return false, "", 2, false
	}
	if fl.NArg() != 1 {
		usage()
		return false, "", 2, false
	}
	return *q, fl.Arg(0), 0, true
}
