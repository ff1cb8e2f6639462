//go:build !race

package media

// raceEnabled: see race_test.go.
const raceEnabled = false
