package trunk

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// OptionsState is a trunk's OPTIONS keep-alive as the API shows it.
type OptionsState struct {
	// State is off (no keep-alive), unknown (no answer yet), up or down.
	State string `json:"state"`
	// LastError is why the last probe failed ("timeout", "503 Service
	// Unavailable").
	LastError string `json:"last_error,omitempty"`
	// Checked is when the last probe ended.
	Checked time.Time `json:"checked,omitzero"`
}

// keepAlive probes the trunk with OPTIONS (RFC 3261 §11) every
// options_interval until ctx ends. Any final response but 408 and 503
// marks it up (a carrier that answers 404 or 405 to OPTIONS is alive); a
// timeout, a transport error, 408 or 503 marks it down, and a trunk down
// is skipped for outbound calls until a probe succeeds.
func (t *Trunk) keepAlive(ctx context.Context, client *sipgo.Client, contact siplib.ContactHeader, log zerolog.Logger) {
	iv := t.cfg.OptionsInterval
	timeout := min(iv, 5*time.Second)
	callID := siplib.GenerateTagN(16) + "@cloak"
	var cseq uint32
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		cseq++
		err := t.probe(ctx, client, contact, callID, cseq, timeout)
		if ctx.Err() != nil {
			return
		}
		was := t.up.Load()
		t.mu.Lock()
		t.opt.Checked = time.Now()
		if err == "" {
			t.opt.State, t.opt.LastError = "up", ""
		} else {
			t.opt.State, t.opt.LastError = "down", err
		}
		t.mu.Unlock()
		t.up.Store(err == "")
		switch {
		case was && err != "":
			log.Warn().Str("error", err).Msg("trunk down: OPTIONS failed; outbound calls skip it")
		case !was && err == "":
			log.Info().Msg("trunk up: OPTIONS answered")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe sends one OPTIONS and returns "" when the trunk answered alive,
// else why not.
func (t *Trunk) probe(ctx context.Context, client *sipgo.Client, contact siplib.ContactHeader, callID string, cseq uint32, timeout time.Duration) string {
	h, p, err := splitHostPort(t.host)
	if err != nil {
		return "bad host"
	}
	ruri := siplib.Uri{Scheme: "sip", Host: h, Port: p}
	if t.cfg.Transport != "udp" {
		ruri.UriParams = siplib.NewParams()
		ruri.UriParams.Add("transport", t.cfg.Transport)
	}
	req := siplib.NewRequest(siplib.OPTIONS, ruri)
	from := &siplib.FromHeader{Address: siplib.Uri{Scheme: "sip", User: "cloak", Host: contact.Address.Host, Port: contact.Address.Port}, Params: siplib.NewParams()}
	from.Params.Add("tag", siplib.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&siplib.ToHeader{Address: ruri, Params: siplib.NewParams()})
	cid := siplib.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&siplib.CSeqHeader{SeqNo: cseq, MethodName: siplib.OPTIONS})
	req.AppendHeader(siplib.NewHeader("Accept", "application/sdp"))
	if r := t.proxyRoute(); r != "" {
		req.AppendHeader(siplib.NewHeader("Route", "<"+r+">"))
	}
	req.SetBody(nil)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := client.Do(pctx, req)
	if err != nil {
		return transportError(err, pctx).Error()
	}
	if res.StatusCode == 408 || res.StatusCode == 503 {
		return strconv.Itoa(res.StatusCode) + " " + safeReason(strings.TrimSpace(res.Reason))
	}
	return ""
}

// Status is one trunk as GET /api/trunks shows it: never a credential.
type Status struct {
	Name      string       `json:"name"`
	Transport string       `json:"transport"`
	Host      string       `json:"host,omitempty"`
	Up        bool         `json:"up"`
	Calls     int64        `json:"outbound_calls"`
	MaxCalls  int          `json:"max_calls"`
	Register  RegState     `json:"registration"`
	Options   OptionsState `json:"options"`
}

// Status returns every trunk's state, in configuration order.
func (s *Set) Status() []Status {
	out := make([]Status, 0, len(s.trunks))
	for _, t := range s.trunks {
		t.mu.Lock()
		opt := t.opt
		t.mu.Unlock()
		out = append(out, Status{Name: t.cfg.Name, Transport: t.cfg.Transport, Host: t.host, Up: t.up.Load(),
			Calls: t.calls.Load(), MaxCalls: t.cfg.MaxCalls, Register: t.regState(), Options: opt})
	}
	return out
}
