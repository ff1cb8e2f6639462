package call

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/dtmf"
	"github.com/cloak-voip/cloak/media"
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

// Capture is the process-wide protocol and media capture: sinks every
// call's CallCapture writes to. Nil sinks are off.
type Capture struct {
	SIP capture.Sink // SIP messages (pcap and/or HEP)
	RTP capture.Sink // RTP of every leg (pcap)
}

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
	_ = s.Reject(503, "Service Unavailable")
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
	rec, err := recorder.New(recorder.Config{Dir: dir, Name: c.id, CallID: c.id, Codec: codec, Key: c.m.cfg.RecordingKey, Policy: recorder.PolicyRecord,
		OnFailure: c.recordingFailed})
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
	if err != nil {
		c.log.Warn().Err(err).Msg("recording failed")
		return
	}
	st := rec.Stats()
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

// legMonitor feeds the recorder and media capture from a leg's traffic,
// as the gate allows. The caller leg is recorded: what the caller says on
// the left, what they hear (prompts, the agent) on the right. It runs on
// the hot path (see media.Monitor): the receive side decodes and masks in
// the packet's scratch buffers (its reader's); the send side hands the
// G.711 payload to the recorder as it is, under the endpoint's transmit
// lock.
type legMonitor struct {
	// Read per packet; the buffers' slice headers follow.
	c      *Interaction
	rtp    *capture.CallCapture
	record bool
	// shareMask: a masked bridge uses this monitor's output, so mask even
	// when not recording.
	shareMask atomic.Bool
	// masker removes in-band DTMF from the caller's side of the recording
	// in every mode (DESIGN scenario 3: tones are replaced with silence
	// before the recorder hears them), adding its 40 ms delay to that
	// channel. Owned by the read goroutine, like the fields below.
	masker *dtmf.Masker
	// The last packet's masked audio (in that packet's scratch buffer)
	// and digits, for the bridge, which runs next on the same packet.
	maskedOK     bool
	maskedSeq    uint16
	maskedSSRC   uint32
	masked       []int16
	maskedEvents []dtmf.Event
}

// newCallerMonitor returns the caller leg's monitor: recorded, with tones
// masked out of the recording.
func newCallerMonitor(c *Interaction, rtp *capture.CallCapture) *legMonitor {
	m, _ := dtmf.NewMasker(dtmf.MaskerConfig{})
	return &legMonitor{c: c, record: true, rtp: rtp, masker: m}
}

// Received implements media.Monitor.
func (l *legMonitor) Received(e *media.Endpoint, p *media.Packet) {
	mode := l.c.Mode()
	if l.rtp != nil && Route(mode, MediaCapture) == Pass {
		_ = l.rtp.WritePacket(time.Now(), p.From, e.LocalAddr(), capture.ProtoUDP, p.Raw)
	}
	l.maskedOK = false
	if !l.record || l.masker == nil {
		return
	}
	rec := l.c.rec.Load()
	if rec == nil && !l.shareMask.Load() {
		return
	}
	if p.IsEvent {
		l.masker.Suppress(160 * 8) // a phone's in-band leading edge
		return
	}
	// In secure mode the delay line is blanked (Hold), so none of the
	// segment's last 40 ms comes out after it ends.
	if mode == Secure {
		l.masker.Hold()
	} else {
		l.masker.Release()
	}
	// Decoded and masked audio go in the packet's scratch buffers (the
	// reader's, warm in its cache); the masked half stays there for the
	// bridge, which runs next on this packet.
	in, out := p.Scratch()
	pcm := e.Codec().Decode(p.Payload, in[:0])
	if len(pcm) > len(out) {
		return // longer than any ptime offered: not masked, not recorded
	}
	out = out[:len(pcm)]
	evs, err := l.masker.Process(pcm, out)
	if err != nil {
		return
	}
	// Shared with the bridge, which runs next on this goroutine: one
	// masker per caller leg serves both the recorder and the agent.
	l.masked, l.maskedEvents, l.maskedOK = out, evs, true
	l.maskedSeq, l.maskedSSRC = p.Header.SequenceNumber, p.Header.SSRC
	if rec != nil && Route(mode, Recorder) == Pass {
		rec.WriteCaller(out)
	}
}

// maskedFor returns the masked audio the monitor made of packet p (and
// the digits its detector completed), if it made it.
func (l *legMonitor) maskedFor(p *media.Packet) ([]int16, []dtmf.Event, bool) {
	if l == nil || !l.maskedOK || l.maskedSeq != p.Header.SequenceNumber || l.maskedSSRC != p.Header.SSRC {
		return nil, nil, false
	}
	return l.masked, l.maskedEvents, true
}

// Sent implements media.Monitor.
func (l *legMonitor) Sent(e *media.Endpoint, raw []byte) {
	mode := l.c.Mode()
	if l.rtp != nil && Route(mode, MediaCapture) == Pass {
		_ = l.rtp.WritePacket(time.Now(), e.LocalAddr(), e.Remote(), capture.ProtoUDP, raw)
	}
	if !l.record || Route(mode, Recorder) != Pass || len(raw) < 12 {
		return
	}
	if pt := raw[1] & 0x7f; pt == e.EventPT() && pt != 0 {
		return
	}
	rec := l.c.rec.Load()
	if rec == nil {
		return
	}
	// Queued as the G.711 it is; the recorder's writer expands it, off
	// the hot path.
	if payload, ok := rtpPayload(raw); ok {
		rec.WriteCompanded(recorder.Agent, payload, e.Codec().Expansion())
	}
}

// rtpPayload returns the payload of an RTP datagram (RFC 3550 §5.1:
// skipping CSRCs, a header extension and padding) without allocating.
func rtpPayload(b []byte) ([]byte, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, false
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return nil, false
		}
		n += 4 + 4*(int(b[n+2])<<8|int(b[n+3]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 {
		end -= int(b[end-1])
	}
	if n > end {
		return nil, false
	}
	return b[n:end], true
}

// captures maps SIP Call-IDs to their interaction's SIP capture, so that a
// message of a call in a secure segment is left out.
type captures struct {
	mu    sync.RWMutex
	byID  map[string]*capture.CallCapture
	total capture.Sink
}

func (cs *captures) add(callID string, cc *capture.CallCapture) {
	cs.mu.Lock()
	cs.byID[callID] = cc
	cs.mu.Unlock()
}

func (cs *captures) remove(callID string) {
	cs.mu.Lock()
	delete(cs.byID, callID)
	cs.mu.Unlock()
}

// ObserveSIP is the SIP server's message observer: every SIP message in or
// out goes to the protocol capture, except those of a call whose capture
// the gate suppressed.
func (m *Manager) ObserveSIP(msg sip.Observed) {
	if m.caps.total == nil {
		return
	}
	m.caps.mu.RLock()
	cc := m.caps.byID[sip.CallIDOf(msg.Data)]
	m.caps.mu.RUnlock()
	proto := capture.ProtoUDP
	if msg.Reliable {
		proto = capture.ProtoTCP
	}
	if cc != nil {
		_ = cc.WritePacket(msg.Time, msg.Src, msg.Dst, proto, msg.Data)
		return
	}
	_ = m.caps.total.WritePacket(msg.Time, msg.Src, msg.Dst, proto, msg.Data)
}

// openCaptures gives an interaction its SIP and RTP captures.
func (c *Interaction) openCaptures() {
	if c.m.cfg.Capture.SIP != nil {
		c.sipCap = capture.NewCallCapture(c.s.SIPCallID(), c.m.cfg.Capture.SIP)
		c.m.caps.add(c.s.SIPCallID(), c.sipCap)
	}
	if c.m.cfg.Capture.RTP != nil {
		c.rtpCap = capture.NewCallCapture(c.s.SIPCallID(), c.m.cfg.Capture.RTP)
	}
}

// addLegCapture registers an outbound leg's SIP Call-ID with the
// interaction's capture.
func (c *Interaction) addLegCapture(sipCallID string) {
	if c.sipCap != nil {
		c.m.caps.add(sipCallID, c.sipCap)
		c.mu.Lock()
		c.legCallIDs = append(c.legCallIDs, sipCallID)
		c.mu.Unlock()
	}
}

func (c *Interaction) closeCaptures() {
	if c.sipCap != nil {
		c.m.caps.remove(c.s.SIPCallID())
		c.mu.Lock()
		ids := c.legCallIDs
		c.mu.Unlock()
		for _, id := range ids {
			c.m.caps.remove(id)
		}
	}
}

// secureSinks sets the recorder and the captures for the mode the call is
// entering, as the gate says for each (Route): a sink that may not pass in
// that mode is paused or suppressed, with a marker; one that may is
// resumed. Called before the mode flips to secure and after it flips back.
func (c *Interaction) secureSinks(on bool) {
	mode := Normal
	if on {
		mode = Secure
	}
	now := time.Now()
	for _, s := range []struct {
		cc   *capture.CallCapture
		sink Sink
	}{{c.sipCap, ProtocolCapture}, {c.rtpCap, MediaCapture}} {
		if s.cc == nil {
			continue
		}
		if Route(mode, s.sink) == Pass {
			s.cc.Resume(now)
		} else {
			s.cc.Suppress(mode.String(), now)
		}
	}
	if rec := c.rec.Load(); rec != nil {
		var err error
		if Route(mode, Recorder) == Pass {
			err = rec.Resume(recorder.ReasonSecure)
		} else {
			err = rec.Pause(recorder.ReasonSecure)
		}
		if err != nil {
			c.log.Warn().Err(err).Msg("recording pause/resume")
		}
	}
}

// ErrNoRecording: the call is not being recorded.
var ErrNoRecording = fmt.Errorf("call is not recorded")
