package main

import (
	"fmt"
	"io"
)

// runDTMF implements `cloak dtmf ...` (stub until the dtmf scan command lands).
func runDTMF(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "cloak dtmf: not implemented yet")
	return 2
}
