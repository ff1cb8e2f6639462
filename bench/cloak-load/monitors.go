package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
)

// monitors is -monitors: supervisors' monitor legs started through
// cloak's API (POST /api/calls/{id}/monitor, docs/MONITORING.md) on some
// of the bridged calls. cloak calls our monitor UAS, which answers every
// leg into one UDP sink that counts what it receives and sends nothing
// (a listening supervisor's phone says nothing).
type monitors struct {
	api, token, supervisor string
	sipAddr                netip.AddrPort
	client                 *http.Client

	ua   *sipgo.UserAgent
	sink *net.UDPConn
	rx   atomic.Uint64 // packets the sink received

	legs agentStats // the monitor legs cloak placed to our UAS

	mu      sync.Mutex
	started int
	failed  int
	errs    map[string]int
}

// monitorSummary is the -monitors part of the summary.
type monitorSummary struct {
	Requested int            `json:"requested"`
	Started   int            `json:"started"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	Answered  int64          `json:"legs_answered"`
	// RxPPS is the packets a second the monitors' sink received in the
	// measured window, all monitors together (50 per listening monitor
	// when every 20 ms mix reaches it).
	RxPPS float64 `json:"rx_pps"`
}

// newMonitors starts the monitor UAS on sipAddr and its sink.
func newMonitors(ctx context.Context, api, token, supervisor, sipAddr string) (*monitors, error) {
	ap, err := netip.ParseAddrPort(sipAddr)
	if err != nil {
		return nil, fmt.Errorf("-monitor-sip: %w", err)
	}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("monitor sink: %w", err)
	}
	_ = sink.SetReadBuffer(4 << 20)
	m := &monitors{api: api, token: token, supervisor: supervisor, sipAddr: ap, sink: sink,
		client: &http.Client{Timeout: 30 * time.Second}}
	go m.read()
	sinkPort := sink.LocalAddr().(*net.UDPAddr).Port
	// Monitor legs are plain RTP: the sink only counts packets.
	m.ua, err = startUAS(ctx, sipAddr, "monitor", &m.legs, csip.DialogSRTP{}, func(*csip.Offer) (int, int) {
		return sinkPort, int(m.legs.invites.Load())
	}, func(_ *csip.Offer, _ int, done <-chan struct{}) error { <-done; return nil })
	if err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// read counts the sink's packets until it is closed.
func (m *monitors) read() {
	buf := make([]byte, 2048)
	for {
		if _, err := m.sink.Read(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m.rx.Add(1)
	}
}

// start asks cloak to monitor n bridged calls (those with an agent and no
// monitor yet, in the API's order), up to 8 requests at a time, and
// returns once every request has been answered.
func (m *monitors) start(ctx context.Context, n int) {
	var calls []struct {
		ID       string            `json:"id"`
		Agent    string            `json:"agent"`
		Monitors []json.RawMessage `json:"monitors"`
	}
	if err := m.do(ctx, http.MethodGet, "/api/calls", nil, &calls); err != nil {
		m.fail(n, fmt.Errorf("GET /api/calls: %w", err))
		return
	}
	var ids []string
	for _, c := range calls {
		if c.Agent != "" && len(c.Monitors) == 0 && len(ids) < n {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) < n {
		m.fail(n-len(ids), fmt.Errorf("only %d bridged calls to monitor", len(ids)))
	}
	target := fmt.Sprintf("sip:monitor@%s", m.sipAddr)
	body, _ := json.Marshal(map[string]string{"mode": "listen", "target": target, "supervisor": m.supervisor})
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.do(ctx, http.MethodPost, "/api/calls/"+id+"/monitor", body, nil); err != nil {
				m.fail(1, err)
				return
			}
			m.mu.Lock()
			m.started++
			m.mu.Unlock()
		}()
	}
	wg.Wait()
}

// do sends one API request with the token and decodes a 2xx body into out.
func (m *monitors) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, m.api+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if res.StatusCode/100 != 2 {
		if len(b) > 60 {
			b = b[:60]
		}
		return fmt.Errorf("%s %s: %d %s", method, path[:min(len(path), 10)], res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (m *monitors) fail(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed += n
	if m.errs == nil {
		m.errs = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	m.errs[msg] += n
}

// summary reports the monitors, with the sink's rate over a window that
// saw rx packets in seconds.
func (m *monitors) summary(requested int, rx uint64, seconds float64) *monitorSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &monitorSummary{Requested: requested, Started: m.started, Failed: m.failed, Errors: m.errs, Answered: m.legs.answered.Load()}
	if seconds > 0 {
		s.RxPPS = float64(rx) / seconds
	}
	return s
}

func (m *monitors) close() {
	if m.ua != nil {
		m.ua.Close()
	}
	_ = m.sink.Close()
}
