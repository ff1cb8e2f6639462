//go:build !unix

package recorder

import "os"

// lockFile does nothing where flock is not available.
func lockFile(*os.File) error { return nil }

// lockedElsewhere cannot tell where flock is not available.
func lockedElsewhere(string) bool { return false }
