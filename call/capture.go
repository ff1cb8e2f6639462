package call

import (
	"sync"

	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/sip"
)

// This file gives each interaction its SIP and RTP captures; the gate's
// decisions reach them through applySinks.

// Capture is the process-wide protocol and media capture: sinks every
// call's CallCapture writes to. Nil sinks are off.
type Capture struct {
	SIP capture.Sink // SIP messages (pcap and/or HEP)
	RTP capture.Sink // RTP of every leg (pcap)
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
//
// It runs before the answer (Manager.HandleCall), so that every message of
// the dialog from the 200 OK on goes through the call's capture. A call
// whose gate closed before the answer (secureFromAnswer) gets captures
// that are dark before they can take a packet: opened after the answer,
// the 200 OK went to the process-wide sink, and registered before being
// suppressed, the caller's ACK racing the answer was captured inside the
// secure segment (TestLeakCanary/pay, CI 2026-12-07, twice).
func (c *Interaction) openCaptures() {
	if c.m.cfg.Capture.SIP != nil {
		c.sipCap = capture.NewCallCapture(c.s.SIPCallID(), c.m.cfg.Capture.SIP)
	}
	if c.m.cfg.Capture.RTP != nil {
		c.rtpCap = capture.NewCallCapture(c.s.SIPCallID(), c.m.cfg.Capture.RTP)
	}
	if mode := c.Mode(); mode != Normal {
		c.mu.Lock()
		c.applySinks(mode, true) // no recorder yet: the captures only
		c.mu.Unlock()
	}
	if c.sipCap != nil {
		c.m.caps.add(c.s.SIPCallID(), c.sipCap) // dark already, if it must be
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
