package mp3

import (
	"os"

	"golang.org/x/sys/unix"
)

// seekableOutput is an anonymous in-memory file (memfd_create(2)) for
// LAME's output: LAME seeks back to write its Info/LAME tag (encoder
// delay and padding, so decoders trim them and the MP3 lasts exactly as
// long as the WAV), which a pipe cannot do, and the audio never touches
// a disk outside the recordings directory, where retention would not
// find it.
func seekableOutput() (*os.File, error) {
	fd, err := unix.MemfdCreate("cloak-mp3", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "memfd:cloak-mp3"), nil
}
