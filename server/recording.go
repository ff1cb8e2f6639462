package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/rs/zerolog"
)

type recordingConf struct {
	dir string
	key []byte
}

// recordingSetup prepares the recordings directory and the sidecar signing
// key (created on first start when none is configured).
func recordingSetup(cfg config.Config) (recordingConf, error) {
	dir := cfg.Recording.Dir
	if dir == "" {
		dir = filepath.Join(cfg.Data.Dir, "recordings")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return recordingConf{}, fmt.Errorf("recording.dir: %w", err)
	}
	keyFile := cfg.Recording.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Data.Dir, "recording.key")
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			var k [32]byte
			if _, err := rand.Read(k[:]); err != nil {
				return recordingConf{}, err
			}
			if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(k[:])+"\n"), 0o600); err != nil {
				return recordingConf{}, fmt.Errorf("recording.key_file: %w", err)
			}
		}
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return recordingConf{}, fmt.Errorf("recording.key_file: %w", err)
	}
	key = []byte(strings.TrimSpace(string(key)))
	if len(key) < 16 {
		return recordingConf{}, fmt.Errorf("recording.key_file: %s holds %d bytes, want at least 16", keyFile, len(key))
	}
	return recordingConf{dir: dir, key: key}, nil
}

// recoverRecordings deals with the recordings a crash left unfinished in
// the recordings directory (recording.recover), before any call starts,
// logging one line per file: its path, what was done, the audio kept —
// never its content.
func recoverRecordings(cfg config.Config, rec recordingConf, log zerolog.Logger) {
	mode := recorder.RecoverRepair
	if cfg.Recording.Recover == "quarantine" {
		mode = recorder.RecoverQuarantine
	}
	out, err := recorder.Recover(recorder.RecoverConfig{Dir: rec.dir, Key: rec.key, Mode: mode})
	if err != nil {
		log.Error().Err(err).Msg("recordings not checked for crash leftovers")
		return
	}
	for _, rc := range out {
		ev, msg := log.Warn(), "unfinished recording "+rc.Action
		if rc.Err != nil {
			ev, msg = log.Error().Err(rc.Err), "unfinished recording left as it was (tried: "+rc.Action+"; next start tries again)"
		}
		ev.Str("file", rc.Path).Str("dest", rc.Dest).Str("action", rc.Action).Int64("bytes", rc.Bytes).
			Int64("cut_bytes", rc.CutBytes).Str("duration", rc.Duration.String()).Str("reason", rc.Reason).
			Msg(msg)
	}
}
