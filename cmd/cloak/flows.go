package main

import (
	"fmt"
	"io"
)

// runFlows implements `cloak flows ...` (stub until the flow validator lands).
func runFlows(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "cloak flows: not implemented yet")
	return 2
}
