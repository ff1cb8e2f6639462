package server

import (
	"os"
	"testing"

	"github.com/cloak-voip/cloak/archive/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the PostgreSQL tests
// start (pgtest), once the package's tests are over.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
