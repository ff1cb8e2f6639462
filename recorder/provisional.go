package recorder

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// This file keeps the provisional sidecar beside a recording's part file
// up to date, so that crash recovery (recover.go) knows the call, its start
// and its pause markers.

// updateProvisional rewrites the provisional sidecar with the pause
// markers so far, so that a recording recovered after a crash keeps them
// (up to one writer turn late). It runs on its own goroutine, rarely
// (after a pause or a resume): it never holds up the writer's turns,
// and a Pause waits for no disk. Best effort: an error leaves the last
// version, and Recover says the markers are estimated.
func (r *Recorder) updateProvisional() {
	if !r.mu.TryLock() {
		return // Pause, Resume or Close under way: a later turn retries
	}
	if r.finished || !r.provDirty.Swap(false) {
		r.mu.Unlock()
		return
	}
	prov := r.provisional()
	prov.Markers = append([]Marker{}, r.markers...)
	r.mu.Unlock()
	r.provMu.Lock()
	defer r.provMu.Unlock()
	if r.provDone {
		return
	}
	if err := rewriteProvisional(r.jsonPart, &prov); err != nil {
		r.provDirty.Store(true)
	}
}

// provisional is the provisional sidecar: what is known at New.
func (r *Recorder) provisional() Sidecar {
	return Sidecar{Version: incidentVersion, Status: statusRecording,
		CallID: r.cfg.CallID, Start: r.start.UTC().Round(0), Codec: r.cfg.Codec, SampleRate: SampleRate, BitsPerSample: 16,
		Channels: Layout{Left: Caller.String(), Right: Agent.String()}}
}

// endProvisional stops rewrites of the provisional sidecar: Close writes
// the final one over it, Discard removes it.
func (r *Recorder) endProvisional() {
	r.provMu.Lock()
	r.provDone = true
	r.provMu.Unlock()
}

// rewriteProvisional writes prov over the provisional sidecar at part in
// place, padded to the file's size, never truncating it first: the space
// reserved stays reserved.
func rewriteProvisional(part string, prov *Sidecar) error {
	f, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	b, err := json.Marshal(prov)
	if err != nil {
		return err
	}
	if pad := max(int64(sidecarReserve), st.Size()) - int64(len(b)); pad > 0 {
		b = append(b, strings.Repeat(" ", int(pad-1))...)
		b = append(b, '\n')
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Close()
}

// reserveSidecar writes the provisional sidecar prov to part, padded
// with white space to sidecarReserve bytes: it tells Recover the call and
// the start after a crash, and holds the space the final sidecar is
// written over, so a disk that fills during the call cannot leave the
// audio without a sidecar. It is not fsynced: after a power loss Recover
// estimates what it would have said.
func reserveSidecar(part string, prov *Sidecar) error {
	b, err := json.Marshal(prov)
	if err != nil {
		return fmt.Errorf("%w: encode sidecar: %w", ErrWrite, err)
	}
	if len(b) < sidecarReserve {
		b = append(b, strings.Repeat(" ", sidecarReserve-len(b)-1)...)
		b = append(b, '\n')
	}
	err = os.WriteFile(part, b, 0o640)
	if err != nil {
		os.Remove(part)
		return fmt.Errorf("%w: reserve sidecar %s: %w", ErrWrite, part, err)
	}
	return nil
}
