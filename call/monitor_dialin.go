package call

import (
	"errors"
	"strings"

	"github.com/cloak-voip/cloak/sip"
)

// This file is a supervisor dialling in (docs/MONITORING.md, "Dialling
// in"): an INVITE to DialCode + an agent's name (*55alice) from a phone
// that authenticated as a user (sip.invite_auth) becomes a monitor leg on
// that agent's live call, in listen mode; the INVITE's own dialog is the
// leg (no call is placed). Keys 4/5/6 switch the mode, and the start,
// changes and stop are audited as the API's are (via "dial_in").

// Reason phrases of a refused dial-in (RFC 3261 §21: the code is what a
// phone acts on, the phrase what its user reads).
const (
	reasonDialInUnauthenticated = "Forbidden: Not Authenticated"
	reasonDialInNotSupervisor   = "Forbidden: Not A Supervisor Of The Queue"
	reasonDialInNoAgent         = "Not Found: No Such Agent"
	reasonDialInNoCall          = "Temporarily Unavailable: No Live Call"
	reasonDialInFull            = "Busy Here: Call Has Its Maximum Monitors"
)

// dialInAgent returns the agent a called user part asks to monitor (the
// part after DialCode), ok false when it is no dial-in.
func (m *Manager) dialInAgent(called string) (agent string, ok bool) {
	code := m.cfg.Monitor.DialCode
	if code == "" || !strings.HasPrefix(called, code) {
		return "", false
	}
	return strings.TrimPrefix(called, code), true
}

// supervisorOf is the user a dial-in's SIP user monitors as.
func (m *Manager) supervisorOf(sipUser string) string {
	if u, ok := m.cfg.Monitor.Users[sipUser]; ok && u != "" {
		return u
	}
	return sipUser
}

// agentCall returns the live call bridged to the agent named name: nil
// and ok true when the agent exists but has none, ok false when there is
// no such agent.
func (m *Manager) agentCall(name string) (c *Interaction, ok bool) {
	if m.dir == nil || name == "" {
		return nil, false
	}
	for _, a := range m.dir.Agents() {
		if a.Name != name {
			continue
		}
		if a.Call == "" {
			return nil, true
		}
		if c, live := m.Call(a.Call); live {
			if side := c.agentSideNow(); side != nil && side.agent != nil && side.agent.Name() == name {
				return c, true
			}
		}
		return nil, true
	}
	return nil, false
}

// monitorDialIn serves a supervisor's dial-in to agent until the monitor
// leg ends (the supervisor hangs up, the call ends, or the API stops it).
// The permission is the API's: a user whose role grants calls.monitor
// (MonitorConfig.MayMonitor) listed in the call's queues[].supervisors.
// Refusals: not authenticated or not permitted 403, no such agent 404,
// no live call 480, the call's monitors full 486.
func (m *Manager) monitorDialIn(s *sip.Session, agent string) {
	log := s.Log()
	user := s.Identity().User
	if user == "" {
		log.Info().Msg("monitor dial-in refused: the INVITE did not authenticate as a user (sip.invite_auth)")
		_ = s.Reject(403, reasonDialInUnauthenticated)
		return
	}
	sup := m.supervisorOf(user)
	c, known := m.agentCall(agent)
	switch {
	case !known:
		log.Info().Str("supervisor", sup).Msg("monitor dial-in refused: no such agent")
		_ = s.Reject(404, reasonDialInNoAgent)
		return
	case c == nil:
		log.Info().Str("supervisor", sup).Str("agent", agent).Msg("monitor dial-in refused: the agent has no live call")
		_ = s.Reject(480, reasonDialInNoCall)
		return
	}
	side := c.agentSideNow()
	if side == nil {
		_ = s.Reject(480, reasonDialInNoCall)
		return
	}
	if may := m.cfg.Monitor.MayMonitor; may == nil || !may(sup) {
		log.Info().Str("supervisor", sup).Str("call", c.id).Msg("monitor dial-in refused: the user's role does not grant calls.monitor (or no such user)")
		_ = s.Reject(403, reasonDialInNotSupervisor)
		return
	}
	if err := c.maySupervise(side, sup); err != nil {
		log.Info().Str("supervisor", sup).Str("call", c.id).Err(err).Msg("monitor dial-in refused")
		_ = s.Reject(403, reasonDialInNotSupervisor)
		return
	}
	var mon *monitor
	_, err := c.addMonitor(sup, MonitorListen, "dial_in", func(id string) (*monitor, error) {
		var err error
		mon, err = c.answerMonitor(s, id, sup)
		return mon, err
	})
	if err != nil {
		switch {
		case errors.Is(err, ErrMonitorLimit):
			_ = s.Reject(486, reasonDialInFull)
		case errors.Is(err, ErrNotBridged):
			_ = s.Reject(480, reasonDialInNoCall)
		default:
			_ = s.Reject(503, "Service Unavailable")
		}
		return
	}
	<-mon.done
}

// answerMonitor answers a supervisor's INVITE with a leg of its own and
// attaches it to c as monitor id.
func (c *Interaction) answerMonitor(s *sip.Session, id, sup string) (*monitor, error) {
	ep, local, err := c.legToward(s.Source().Addr())
	if err != nil {
		return nil, err
	}
	local.RTCPMux = c.m.rtcpMuxAllowed()
	agreed, err := s.Answer(local)
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	mon, err := c.attachMonitor(s, ep, agreed, id, sup, MonitorListen)
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	s.SetCallbacks(monitorMedia(ep), infoHandler(mon.onKey))
	return mon, nil
}
