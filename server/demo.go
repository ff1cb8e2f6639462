package server

import (
	"io/fs"

	"github.com/cloak-voip/cloak"
)

func demoPrompts() fs.FS { return cloak.DemoPrompts() }

func demoFlows() fs.FS { return cloak.DemoFlows() }
