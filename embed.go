// Package cloak holds what the cloak binary embeds: the demo prompts and
// flows under testdata/, so that `cloak serve` runs the demo from any
// directory with no files beside it.
package cloak

import (
	"embed"
	"io/fs"
)

//go:embed testdata/prompts testdata/flows
var demo embed.FS

// DemoPrompts returns the embedded demo prompts (8 kHz G.711 WAVs).
func DemoPrompts() fs.FS {
	sub, err := fs.Sub(demo, "testdata/prompts")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// DemoFlows returns the embedded demo IVR flows.
func DemoFlows() fs.FS {
	sub, err := fs.Sub(demo, "testdata/flows")
	if err != nil {
		panic(err)
	}
	return sub
}
