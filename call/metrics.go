package call

import (
	"strings"
	"time"

	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
)

// Metrics is told of the call layer's events that no counter of its own
// keeps, once per call, segment, digit or queue wait (never per packet),
// for the node's Prometheus metrics (server wires metrics.Calls here).
// Every string it is given comes from a bounded set named in the
// configuration or in this package: a route's target, a flow or queue
// name, an ending from Endings, a DTMF source. Never a number, a digit,
// a call id or a user name. Implementations must be safe for concurrent
// use and must not block.
type Metrics interface {
	// CallStarted: a call on route was taken (before it is answered).
	CallStarted(route string)
	// CallAnswered: cloak answered the call on route d after taking it
	// (its own set-up: RTP port, media address, recording admission).
	CallAnswered(route string, d time.Duration)
	// CallEnded: the call ended as ending (one of Endings) after d.
	CallEnded(route, ending string, d time.Duration)
	// SecureStarted: a secure segment of flow began.
	SecureStarted(flow string)
	// SecureEnded: the segment of flow ended after d, outcome "left" (the
	// flow left it) or "call_ended" (the call ended inside it).
	SecureEnded(flow, outcome string, d time.Duration)
	// Digit: a digit was counted from source (rfc4733, inband, info).
	Digit(source string)
	// QueueJoined and QueueLeft: a caller waits in queue, then leaves it
	// "answered", "timeout" or "abandoned" after wait.
	QueueJoined(queue string)
	QueueLeft(queue, outcome string, wait time.Duration)
	// RecordingClosed: a recording ended with these counters.
	RecordingClosed(st recorder.Stats)
	// LegEnded: a leg ("caller" or "agent") that received RTP ended with
	// this quality (RFC 3550 loss and jitter, RTT from RTCP, G.107 MOS).
	LegEnded(leg string, q media.Quality)
}

// Endings are the values CallEnded's ending takes: why a call ended,
// folded from the interaction's reason into a bounded set.
var Endings = []string{"caller_hangup", "caller_cancel", "no_ack", "rejected", "agent_hangup", "flow_hangup",
	"flow_finished", "secure_flow_ended", "dial_failed", "played", "rtp_timeout", "shutdown", "error", "other"}

// ending folds an interaction's end reason (and, when nothing of cloak's
// ended it, the SIP session's) into one of Endings.
func ending(reason, sipReason string) string {
	switch {
	case reason == "closed":
		switch {
		case sipReason == "bye" || sipReason == "" || sipReason == "hangup":
			return "caller_hangup"
		case sipReason == "cancel":
			return "caller_cancel"
		case sipReason == "no ACK":
			return "no_ack"
		case strings.HasPrefix(sipReason, "rejected"):
			return "rejected"
		}
		return "other"
	case strings.HasPrefix(reason, "flow: "):
		return "flow_hangup"
	}
	switch reason {
	case "agent hung up":
		return "agent_hangup"
	case "flow finished":
		return "flow_finished"
	case "secure flow ended":
		return "secure_flow_ended"
	case "dial failed":
		return "dial_failed"
	case "played":
		return "played"
	case "rtp-timeout":
		return "rtp_timeout"
	case "shutdown":
		return "shutdown"
	case "error":
		return "error"
	}
	return "other"
}

// routeLabel is a call's route for metrics: its target as configured
// ("echo", "flow:pay", "prompt:goodbye"), with a dial target's URI left
// out ("dial"), since a URI's user part can be a number.
func routeLabel(target string) string {
	if strings.HasPrefix(target, "dial:") {
		return "dial"
	}
	return target
}

// nopMetrics is the Metrics of a manager configured without one.
type nopMetrics struct{}

func (nopMetrics) CallStarted(string)                        {}
func (nopMetrics) CallAnswered(string, time.Duration)        {}
func (nopMetrics) CallEnded(string, string, time.Duration)   {}
func (nopMetrics) SecureStarted(string)                      {}
func (nopMetrics) SecureEnded(string, string, time.Duration) {}
func (nopMetrics) Digit(string)                              {}
func (nopMetrics) QueueJoined(string)                        {}
func (nopMetrics) QueueLeft(string, string, time.Duration)   {}
func (nopMetrics) RecordingClosed(recorder.Stats)            {}
func (nopMetrics) LegEnded(string, media.Quality)            {}
