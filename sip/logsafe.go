package sip

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/cloak-voip/cloak/capture"
	"github.com/rs/zerolog"
)

// This file is the logging boundary between sipgo and cloak's logs. sipgo
// logs through log/slog: its transports log a message they cannot parse
// with the whole message as a "data" attribute, its parser's errors quote
// the offending line, and its transaction layer logs start lines (the
// Request-URI's user part) and transaction keys (the Via branch). Any of
// these can carry a card number an attacker or a broken trunk put there.
// Every record sipgo writes goes through safeHandler, which keeps the
// message text and an allow-list of attributes whose values cannot hold
// message bytes, and masks long digit runs in what it keeps. Lines about
// SIP messages that cloak writes itself name only method or status,
// Call-ID, CSeq, source and a reason (see parseFailed). SDES keys
// ("inline:" in an a=crypto line) are replaced by '*' in whatever is
// kept, before any cut.

// safeAttrs are the sipgo attribute keys kept, all addresses, counts,
// states or errors (errors are cut, see safeError). Anything else — "data",
// "req", "res", "msg", "tx", "key", "header", "host" — is dropped.
var safeAttrs = map[string]bool{
	"caller": true, "laddr": true, "raddr": true, "addr": true, "network": true,
	"ip": true, "src": true, "dst": true, "ref": true, "dur": true,
	"state": true, "input": true, "error": true, "fsmError": true, "reason": true,
}

// maxLogValue caps a string attribute kept from sipgo; maxLogMessage its
// message text (sipgo's longest own text is under 100 characters).
const (
	maxLogValue   = 80
	maxLogMessage = 120
)

// withheld replaces a sipgo message text that looks like it carries a
// message (a line break, or longer than any of sipgo's own texts).
const withheld = "sipgo message withheld"

// safeHandler is the slog.Handler given to sipgo (package default logger,
// server and client loggers). It forwards to the zerolog logger current in
// target, so the package-level logger, which sipgo keeps in a global,
// follows the latest server.
type safeHandler struct {
	target *atomic.Pointer[slog.Handler]
	attrs  []slog.Attr
}

// sipgoTarget is where the package-level sipgo logger writes; NewServer
// points it at its own logger.
var sipgoTarget atomic.Pointer[slog.Handler]

// newSafeHandler returns a sanitising handler writing to target.
func newSafeHandler(target *atomic.Pointer[slog.Handler]) *safeHandler {
	return &safeHandler{target: target}
}

// sipgoHandlerFor builds the zerolog-backed handler sipgo's records end in:
// sipgo's own debug lines only when cloak logs at trace, else warnings up.
func sipgoHandlerFor(l zerolog.Logger) slog.Handler {
	lvl := l.GetLevel()
	if lvl > zerolog.TraceLevel {
		lvl = max(lvl, zerolog.WarnLevel)
	}
	return zerolog.NewSlogHandler(l.With().Str("component", "sipgo").Logger().Level(lvl))
}

func (h *safeHandler) inner() slog.Handler {
	if p := h.target.Load(); p != nil {
		return *p
	}
	return nil
}

// Enabled implements slog.Handler.
func (h *safeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	in := h.inner()
	return in != nil && in.Enabled(ctx, l)
}

// Handle implements slog.Handler: a new record with the message text
// checked and only the allowed attributes, their values sanitised.
func (h *safeHandler) Handle(ctx context.Context, r slog.Record) error {
	in := h.inner()
	if in == nil {
		return nil
	}
	msg := r.Message
	if strings.ContainsAny(msg, "\r\n") || len(msg) > maxLogMessage {
		msg = withheld
	}
	out := slog.NewRecord(r.Time, r.Level, maskDigits(redactKeys(msg)), r.PC)
	for _, a := range h.attrs {
		if a, ok := safeAttr(a); ok {
			out.AddAttrs(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a, ok := safeAttr(a); ok {
			out.AddAttrs(a)
		}
		return true
	})
	return in.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *safeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &safeHandler{target: h.target, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
	return n
}

// WithGroup implements slog.Handler. Groups are flattened: sipgo uses
// none, and a group's attributes go through the same allow-list.
func (h *safeHandler) WithGroup(string) slog.Handler { return h }

// safeAttr keeps an allowed attribute with a value that cannot carry
// message bytes.
func safeAttr(a slog.Attr) (slog.Attr, bool) {
	if !safeAttrs[a.Key] {
		return slog.Attr{}, false
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration, slog.KindFloat64, slog.KindTime:
		return slog.Attr{Key: a.Key, Value: v}, true
	case slog.KindString:
		return slog.String(a.Key, safeString(v.String())), true
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, safeError(err)), true
		}
	}
	return slog.Attr{}, false
}

// safeError keeps the part of an error's text before anything it quotes:
// sipgo's parser errors quote the line they failed on ("... in header:
// %q", "transmission beginning '%s' ..."), cut at the first quote.
func safeError(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "'\"`"); i >= 0 {
		s = s[:i] + "[…]"
	}
	return safeString(s)
}

// safeString strips control characters, caps the length and masks digit
// runs.
func safeString(s string) string {
	s = redactKeys(s) // before the cut: half a key is still a secret
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > maxLogValue {
		s = s[:maxLogValue] + "…"
	}
	return maskDigits(s)
}

// redactKeys hides SDES key material (an SDP a=crypto attribute's
// "inline:" key, RFC 4568 §9.1): a future SRTP master key must never be
// logged. It keeps the text's length, as the capture does.
func redactKeys(s string) string {
	if !strings.Contains(strings.ToLower(s), "inline:") {
		return s
	}
	return string(capture.RedactSDESKeys([]byte(s)))
}

// minDigitRun is the shortest digit run maskDigits hides. Ports have five
// digits at most; card numbers (PAN, 12–19 digits) and their groups of
// four or more joined by spaces or dashes are longer.
const minDigitRun = 6

// maskDigits replaces every run of at least minDigitRun digits (single
// spaces or dashes between digits count as part of the run) with '*'s of
// the same length. Dots and colons end a run, so addresses like
// 127.0.0.1:5060 stay readable.
func maskDigits(s string) string {
	var b []byte
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j, n, end := i, 0, i
		for j < len(s) {
			c := s[j]
			if c >= '0' && c <= '9' {
				n++
				j++
				end = j
				continue
			}
			if (c == ' ' || c == '-') && j+1 < len(s) && s[j+1] >= '0' && s[j+1] <= '9' {
				j++
				continue
			}
			break
		}
		if n >= minDigitRun {
			if b == nil {
				b = []byte(s)
			}
			for k := i; k < end; k++ {
				b[k] = '*'
			}
		}
		i = end
	}
	if b == nil {
		return s
	}
	return string(b)
}
