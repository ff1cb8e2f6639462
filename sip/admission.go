package sip

import (
	"math"
	"strconv"
	"sync"
	"time"

	siplib "github.com/emiago/sipgo/sip"
)

// Admission is the node's admission control as the SIP server sees it
// (cloak's is an overload.Monitor). The server asks it before every new
// INVITE and every OPTIONS outside a dialog; requests inside a dialog
// (re-INVITE, BYE, INFO, in-dialog OPTIONS) are never refused, so calls
// already up are untouched.
type Admission interface {
	// Refusing returns why the node takes no new calls now ("" when it
	// does) and the Retry-After to send with the 503. It runs on the
	// transport's goroutine for each such request: it must not block.
	Refusing() (reason string, retryAfter time.Duration)
}

// Pacer is an Admission that also paces new calls as the node nears its
// limits (cloak's overload.Monitor with limits.pace_at): the server asks
// Admit, once per new INVITE, instead of Refusing, and Admit may refuse a
// call while Refusing — asked for OPTIONS — does not, since a pacing node
// still takes calls and a dispatcher should keep sending them.
type Pacer interface {
	Admit() (reason string, retryAfter time.Duration)
}

// Reasons a 503 is counted under in Stats.RefusedBy, beside the
// Admission's own reasons (overload signals such as "cpu" or "lag").
const (
	// RefusedDraining: the node is shutting down (Server.Drain).
	RefusedDraining = "draining"
	// RefusedMaxCalls: Config.MaxCalls calls are in progress.
	RefusedMaxCalls = "max_calls"
	// RefusedCall: the call layer refused the call with 503
	// (Session.Reject) for a reason it did not name.
	RefusedCall = "call"
	// RefusedPorts: no free RTP port, or no address to advertise for
	// RTP (Session.Refuse).
	RefusedPorts = "ports"
	// RefusedDisk: the recordings' filesystem is below its floor and the
	// route must record (Session.Refuse).
	RefusedDisk = "disk"
)

// refuse answers req with 503 Service Unavailable and a Retry-After of
// retryAfter (RFC 3261 §21.5.4, §20.33: a dispatcher or trunk tries
// another node, and may retry this one after that long), counting it
// under reason. It logs nothing: a refusal is counted, an episode of
// overload is logged by whoever decides it.
func (s *Server) refuse(req *siplib.Request, tx siplib.ServerTransaction, reason string, retryAfter time.Duration) {
	if req.IsInvite() {
		s.refusedBy.add(reason)
	} else {
		s.probesRefused.Add(1)
	}
	s.respond(req, tx, 503, "Service Unavailable", siplib.NewHeader("Retry-After", retryAfterValue(retryAfter)))
}

// retryAfterValue renders d as Retry-After's delta-seconds (RFC 3261
// §20.33): whole seconds, rounded up, at least 1.
func retryAfterValue(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// admission asks cfg.Admission, if any, whether new calls are refused:
// for a probe (OPTIONS).
func (s *Server) admission() (reason string, retryAfter time.Duration) {
	if s.cfg.Admission == nil {
		return "", 0
	}
	return s.cfg.Admission.Refusing()
}

// admitCall asks cfg.Admission whether this new call is refused: Admit
// when it paces (Pacer), else as admission.
func (s *Server) admitCall() (reason string, retryAfter time.Duration) {
	if p, ok := s.cfg.Admission.(Pacer); ok {
		return p.Admit()
	}
	return s.admission()
}

// reasonCounts counts refusals by reason. The reasons are cloak's own
// (a handful), never taken from a request. A refusal is not a hot path:
// the mutex is fine.
type reasonCounts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *reasonCounts) add(reason string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]uint64)
	}
	c.m[reason]++
	c.mu.Unlock()
}

func (c *reasonCounts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
