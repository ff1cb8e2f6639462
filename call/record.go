package call

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/cloak-voip/cloak/sip"
)

// Recording policies, per route (called user part).
const (
	RecordAlways   = "always"    // from the answer to the hang-up
	RecordConsent  = "consent"   // paused until the flow sets recording_consent
	RecordOnDemand = "on_demand" // paused until the agent or the API resumes it
	RecordNever    = "never"
)

// Participant data keys a flow sets to answer the consent question.
const (
	// DataDenyRecording set to "true" discards the recording: nothing of
	// the call is kept.
	DataDenyRecording = "deny_recording"
	// DataRecordingConsent set to "accepted" lifts the consent pause.
	DataRecordingConsent = "recording_consent"
)

// recordPolicy returns the recording policy of the interaction's route.
func (m *Manager) recordPolicy(called string) string {
	if p, ok := m.cfg.RecordRoutes[called]; ok {
		return p
	}
	if m.cfg.RecordDefault != "" {
		return m.cfg.RecordDefault
	}
	return RecordNever
}

// recordingStats counts recordings refused or lost to the disk.
type recordingStats struct {
	// unavailable: calls on a route that always records that found less
	// than recording.min_free (refused, or answered unrecorded).
	unavailable atomic.Uint64
	// failed: recordings whose writing failed mid-call (truncated).
	failed atomic.Uint64
}

// RecordingStats returns the calls that found no room to record (refused
// with 503, or answered unrecorded) and the recordings cut short by a
// write error.
func (m *Manager) RecordingStats() (unavailable, failed uint64) {
	return m.recStats.unavailable.Load(), m.recStats.failed.Load()
}

// admitRecording decides, before a call is answered, whether a call on a
// route that always records may go on when the recordings' filesystem
// is below min_free: with "refuse" it answers 503 Service Unavailable
// with Retry-After (RFC 3261 §21.5.4; a dispatcher tries another node)
// and returns false. With "continue" startRecording marks the call.
func (m *Manager) admitRecording(s *sip.Session) bool {
	if m.cfg.RecordingSpace == nil || m.cfg.RecordingDir == "" || m.cfg.RecordOnNoSpace == "continue" ||
		m.recordPolicy(s.Called()) != RecordAlways {
		return true
	}
	err := m.cfg.RecordingSpace.Check()
	if err == nil {
		return true
	}
	m.recStats.unavailable.Add(1)
	log := s.Log()
	log.Warn().Err(err).Msg("call refused: recording unavailable (recording.on_unavailable refuse)")
	_ = s.Refuse(sip.RefusedDisk)
	return false
}

// startRecording opens the interaction's recorder as its route's policy
// says. Recordings go to DIR/YYYY/MM/DD/<call id>.wav with a signed sidecar.
func (c *Interaction) startRecording(codec string) {
	policy := c.m.recordPolicy(c.s.Called())
	if policy == RecordNever || c.m.cfg.RecordingDir == "" {
		return
	}
	if sp := c.m.cfg.RecordingSpace; sp != nil && policy == RecordAlways && c.m.cfg.RecordOnNoSpace == "continue" {
		if err := sp.Check(); err != nil {
			c.m.recStats.unavailable.Add(1)
			c.publish(Event{Type: "recording_unavailable"})
			c.log.Warn().Err(err).Msg("call answered unrecorded: recording unavailable (recording.on_unavailable continue)")
			return
		}
	}
	now := time.Now()
	dir := filepath.Join(c.m.cfg.RecordingDir, now.Format("2006"), now.Format("01"), now.Format("02"))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		c.log.Warn().Err(err).Msg("recording not started")
		return
	}
	var from recorder.Reason
	if mode := c.Mode(); Route(mode, Recorder) != Pass {
		// The gate closed before the answer (secureFromAnswer): paused
		// from the recording's first moment, its marker at 0 ms.
		from = gatePauseReason(mode)
	}
	rec, err := recorder.New(recorder.Config{Dir: dir, Name: c.id, CallID: c.id, Codec: codec, Key: c.m.cfg.RecordingKey, Policy: recorder.PolicyRecord,
		OnFailure: c.recordingFailed, PausedFrom: from})
	if err != nil {
		c.log.Warn().Err(err).Msg("recording not started")
		return
	}
	switch policy {
	case RecordConsent:
		_ = rec.Pause(recorder.ReasonConsent)
	case RecordOnDemand:
		_ = rec.Pause(recorder.ReasonAgent)
	}
	c.rec.Store(rec)
	c.log.Info().Str("policy", policy).Msg("recording started")
}

// finishRecording closes the recorder (files renamed into place, sidecar
// signed).
func (c *Interaction) finishRecording() {
	rec := c.rec.Swap(nil)
	if rec == nil {
		return
	}
	res, err := rec.Close()
	st := rec.Stats()
	c.m.met.RecordingClosed(st)
	if err != nil {
		c.log.Warn().Err(err).Msg("recording failed")
		return
	}
	c.recorded.Store(&res)
	c.log.Info().Str("file", res.WAV).Str("status", res.Meta.State()).Uint64("dropped", st.Dropped).Msg("recording saved")
}

// recordingFailed is told by the recorder's writer, at once, that
// writing the recording failed: the call goes on unrecorded from here,
// and what was written is kept (truncated) at hang-up.
func (c *Interaction) recordingFailed(err error) {
	c.m.recStats.failed.Add(1)
	c.publish(Event{Type: "recording_failed"})
	c.log.Error().Err(err).Msg("recording failed mid-call: the call goes on unrecorded; what was written is kept as truncated")
}

// recordingState is the recording's state for Info: "off" without a
// recorder or once it failed, "paused" with the active reasons, else
// "on".
func (c *Interaction) recordingState() (string, []string) {
	rec := c.rec.Load()
	if rec == nil || !rec.Writing() {
		return "off", nil
	}
	rs := rec.PauseReasons()
	if len(rs) == 0 {
		return "on", nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return "paused", out
}

// PauseRecording pauses the recording for an agent or API reason (the
// secure gate pauses it by itself).
func (c *Interaction) PauseRecording(by string) error {
	rec := c.rec.Load()
	if rec == nil {
		return ErrNoRecording
	}
	return rec.Pause(reasonFor(by))
}

// ResumeRecording lifts a pause of the same origin.
func (c *Interaction) ResumeRecording(by string) error {
	rec := c.rec.Load()
	if rec == nil {
		return ErrNoRecording
	}
	return rec.Resume(reasonFor(by))
}

func reasonFor(by string) recorder.Reason {
	if by == "agent" {
		return recorder.ReasonAgent
	}
	return recorder.ReasonAPI
}

// onConsentData applies the consent answers a flow records as data.
func (c *Interaction) onConsentData(key, value string) {
	rec := c.rec.Load()
	if rec == nil {
		return
	}
	switch {
	case key == DataDenyRecording && truthy(value):
		if c.rec.CompareAndSwap(rec, nil) {
			_ = rec.Discard()
			c.log.Info().Msg("caller declined recording: nothing of the call is kept")
		}
	case key == DataRecordingConsent && strings.EqualFold(value, "accepted"):
		_ = rec.Resume(recorder.ReasonConsent)
	}
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "true", "yes", "1", "declined":
		return true
	}
	return false
}

// applySinks sets the recorder and the captures for mode, as the gate
// says for each (Route). With dark set it only takes away: a sink that may
// not pass in mode is paused or suppressed, with a marker; otherwise it
// only gives back: a sink that may pass is resumed. setMode calls it both
// ways around the switch.
func (c *Interaction) applySinks(mode Mode, dark bool) {
	now := time.Now()
	for _, s := range []struct {
		cc   *capture.CallCapture
		sink Sink
	}{{c.sipCap, ProtocolCapture}, {c.rtpCap, MediaCapture}} {
		if s.cc == nil {
			continue
		}
		switch pass := Route(mode, s.sink) == Pass; {
		case pass && !dark:
			s.cc.Resume(now)
		case !pass && dark:
			s.cc.Suppress(mode.String(), now)
		}
	}
	rec := c.rec.Load()
	if rec == nil {
		return
	}
	var err error
	switch pass := Route(mode, Recorder) == Pass; {
	case pass && !dark:
		// Every reason the gate pauses for: the mode left may be either.
		err = errors.Join(rec.Resume(recorder.ReasonSecure), rec.Resume(recorder.ReasonPayment))
	case !pass && dark:
		err = rec.Pause(gatePauseReason(mode))
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("recording pause/resume")
	}
}

// gatePauseReason is the recorder's marker for a mode that blocks it: an
// agent-assisted payment is marked "payment", anything else "secure".
func gatePauseReason(mode Mode) recorder.Reason {
	if mode == Payment {
		return recorder.ReasonPayment
	}
	return recorder.ReasonSecure
}

// ErrNoRecording: the call is not being recorded.
var ErrNoRecording = fmt.Errorf("call is not recorded")
