//go:build !linux

package mp3

import (
	"errors"
	"os"
)

// seekableOutput is Linux's memfd only: elsewhere LAME writes to a pipe
// (no Info/LAME tag, so decoders keep about 0.14 s of encoder delay and
// padding at 8 kHz).
func seekableOutput() (*os.File, error) { return nil, errors.ErrUnsupported }
