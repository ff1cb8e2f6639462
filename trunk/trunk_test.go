package trunk

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	siplib "github.com/emiago/sipgo/sip"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/sip"
)

func testSet(t *testing.T, cfgs ...config.Trunk) *Set {
	t.Helper()
	for i := range cfgs {
		if cfgs[i].Transport == "" {
			cfgs[i].Transport = "udp"
		}
		if cfgs[i].Numbers.Country == "" {
			cfgs[i].Numbers.Country = "GB"
		}
	}
	s, err := New(cfgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// invite parses a raw INVITE's headers (no body).
func invite(t *testing.T, ruri string, hdrs ...string) *siplib.Request {
	t.Helper()
	msg := "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
		"To: <" + ruri + ">\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContact: <sip:c@192.0.2.1>\r\n"
	for _, h := range hdrs {
		msg += h + "\r\n"
	}
	if !strings.Contains(msg, "\r\nFrom:") {
		msg += "From: <sip:anonymous@192.0.2.1>;tag=1\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	m, err := siplib.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*siplib.Request)
}

// TestMatch: a source is matched by a trunk's match list or its host IP;
// the first trunk in config order wins.
func TestMatch(t *testing.T) {
	s := testSet(t,
		config.Trunk{Name: "ip", Host: "192.0.2.10:5080"},
		config.Trunk{Name: "nets", Host: "carrier.example", Match: []string{"198.51.100.0/24", "2001:db8::1"}},
		config.Trunk{Name: "auth", Match: []string{"203.0.113.0/24"}, InboundAuth: true, Auth: config.TrunkAuth{User: "u", Password: "p"}},
	)
	for _, tc := range []struct {
		ip   string
		name string
		auth bool
	}{
		{"192.0.2.10", "ip", false},
		{"::ffff:192.0.2.10", "ip", false},
		{"192.0.2.11", "", false},
		{"198.51.100.77", "nets", false},
		{"2001:db8::1", "nets", false},
		{"203.0.113.9", "auth", true},
		{"127.0.0.1", "", false},
	} {
		name, auth, ok := s.Match(netip.MustParseAddr(tc.ip))
		if name != tc.name || auth != tc.auth || ok != (tc.name != "") {
			t.Errorf("Match(%s) = %q %v %v; want %q %v", tc.ip, name, auth, ok, tc.name, tc.auth)
		}
	}
	if n, ok := s.ByUser("u"); !ok || n != "auth" {
		t.Errorf("ByUser(u) = %q %v", n, ok)
	}
	if s.Authenticator("auth") == nil || s.Authenticator("ip") != nil {
		t.Error("authenticators wrong")
	}
	// Every inbound_auth trunk lists its addresses: unknown sources are
	// not challenged (403, no guessing).
	if s.Authenticator("") != nil {
		t.Error("a source no trunk matches would be challenged")
	}
	roam := testSet(t, config.Trunk{Name: "roam", InboundAuth: true, Auth: config.TrunkAuth{User: "r", Password: "p"}})
	if roam.Authenticator("") == nil {
		t.Error("a trunk without addresses cannot authenticate")
	}
}

// TestIdentity tables caller and called numbers, PAI trust and the
// redirection history.
func TestIdentity(t *testing.T) {
	s := testSet(t,
		config.Trunk{Name: "trusted", Host: "192.0.2.1", Trusted: true},
		config.Trunk{Name: "plain", Host: "192.0.2.2"},
		config.Trunk{Name: "us", Host: "192.0.2.3", Numbers: config.TrunkNumbers{Country: "US"}},
		config.Trunk{Name: "reg", Host: "192.0.2.4", Register: config.TrunkRegister{Enabled: true}, Auth: config.TrunkAuth{User: "cloak1", Password: "p"}},
	)
	pai := "P-Asserted-Identity: \"Bob\" <sip:+447700900123@carrier;user=phone>, <tel:+447700900123>"
	for _, tc := range []struct {
		trunk, ruri string
		hdrs        []string
		want        sip.Identity
	}{
		{"trusted", "sip:02079460000@cloak", []string{"From: <sip:01632960001@carrier>;tag=1", pai},
			sip.Identity{Caller: "+447700900123", Called: "+442079460000"}},
		{"plain", "sip:02079460000@cloak", []string{"From: <sip:01632960001@carrier>;tag=1", pai},
			sip.Identity{Caller: "+441632960001", Called: "+442079460000"}},
		{"plain", "sip:+442079460000@cloak;user=phone", []string{"From: <tel:+44-1632-960001>;tag=1"},
			sip.Identity{Caller: "+441632960001", Called: "+442079460000"}},
		{"plain", "sip:pay@cloak", []string{"From: <sips:00441632960001@carrier>;tag=1"},
			sip.Identity{Caller: "+441632960001"}},
		{"plain", "sip:pay@cloak", []string{"From: \"Anon\" <sip:anonymous@anonymous.invalid>;tag=1"},
			sip.Identity{}},
		{"us", "sip:2125550123@cloak", []string{"From: <sip:12125550199@carrier>;tag=1"},
			sip.Identity{Caller: "+12125550199", Called: "+12125550123"}},
		{"reg", "sip:cloak1@192.0.2.99", []string{"From: <sip:01632960001@carrier>;tag=1"},
			sip.Identity{Caller: "+441632960001"}},
		{"plain", "sip:02079460000@cloak", []string{"From: <sip:01632960001@carrier>;tag=1",
			"Diversion: <sip:02079460002@carrier>;reason=unconditional, <sip:02079460001@carrier>;reason=user-busy",
			"History-Info: <sip:02079460009@carrier>;index=1"},
			sip.Identity{Caller: "+441632960001", Called: "+442079460000", Redirects: []string{"+442079460001", "+442079460002"}}},
		{"plain", "sip:02079460000@cloak", []string{"From: <sip:01632960001@carrier>;tag=1",
			"History-Info: <sip:02079460001@carrier>;index=1", "History-Info: <sip:02079460000@cloak>;index=1.1"},
			sip.Identity{Caller: "+441632960001", Called: "+442079460000", Redirects: []string{"+442079460001"}}},
	} {
		tc.want.Trunk = tc.trunk
		got := s.Identity(tc.trunk, invite(t, tc.ruri, tc.hdrs...))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s %v:\n got %+v\nwant %+v", tc.trunk, tc.ruri, tc.hdrs, got, tc.want)
		}
	}
	// A registration trunk's dialled number comes from To.
	req := invite(t, "sip:cloak1@192.0.2.99", "From: <sip:01632960001@carrier>;tag=1")
	req.ReplaceHeader(&siplib.ToHeader{Address: siplib.Uri{Scheme: "sip", User: "02079460000", Host: "carrier"}})
	if got := s.Identity("reg", req); got.Called != "+442079460000" {
		t.Errorf("registration trunk: called %q, want it from To", got.Called)
	}
}

// TestRoute: the longest prefix wins, a trunk down or full is skipped,
// Release frees the slot once.
func TestRoute(t *testing.T) {
	s := testSet(t,
		config.Trunk{Name: "any", Host: "192.0.2.1", Prefixes: []string{"+"}},
		config.Trunk{Name: "uk", Host: "192.0.2.2:5080", Transport: "tcp", Prefixes: []string{"+44"}, MaxCalls: 1,
			Auth: config.TrunkAuth{User: "u", Password: "pw"}, Codecs: []string{"PCMA"}},
		config.Trunk{Name: "ukmob", Host: "192.0.2.3", Prefixes: []string{"+447"}},
		config.Trunk{Name: "none", Host: "192.0.2.4"},
	)
	r, err := s.Route("+447700900123", nil)
	if err != nil || r.Trunk != "ukmob" {
		t.Fatalf("+447: %+v %v", r, err)
	}
	r.Release()
	r, err = s.Route("+442079460000", nil)
	if err != nil || r.Trunk != "uk" || r.URI != "sip:+442079460000@192.0.2.2:5080" || r.Transport != "tcp" ||
		r.Username != "u" || r.Password != "pw" || len(r.Codecs) != 1 || r.Codecs[0].Name != "PCMA" {
		t.Fatalf("+4420: %+v %v", r, err)
	}
	// uk is full (max_calls 1): the next best takes it.
	r2, err := s.Route("+442079460000", nil)
	if err != nil || r2.Trunk != "any" {
		t.Fatalf("full: %+v %v", r2, err)
	}
	r2.Release()
	r.Release()
	r.Release() // twice frees once
	if got := s.byName["uk"].calls.Load(); got != 0 {
		t.Fatalf("uk calls %d after release", got)
	}
	// A trunk already tried is skipped.
	if r3, err := s.Route("+447700900123", []string{"ukmob"}); err != nil || r3.Trunk != "uk" {
		t.Fatalf("skip ukmob: %+v %v", r3, err)
	} else {
		r3.Release()
	}
	// uk down: skipped.
	s.byName["uk"].up.Store(false)
	s.byName["any"].up.Store(false)
	if _, err := s.Route("+442079460000", nil); !errors.Is(err, ErrAllDown) {
		t.Fatalf("all down: %v", err)
	}
	s2 := testSet(t, config.Trunk{Name: "uk", Host: "192.0.2.2", Prefixes: []string{"+44"}})
	if _, err := s2.Route("+12125550123", nil); !errors.Is(err, sip.ErrNoTrunk) {
		t.Fatalf("no prefix: %v", err)
	}
}

// TestBackoff: doubling from 1s, capped at 5m, jitter within ±20 %.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {100, 5 * time.Minute}} {
		if got := backoff(tc.n, 0.5); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.n, got, tc.want)
		}
		lo, hi := backoff(tc.n, 0), backoff(tc.n, 1)
		if lo < tc.want*8/10 || hi > tc.want*12/10 || lo >= hi {
			t.Errorf("backoff(%d) jitter %v..%v", tc.n, lo, hi)
		}
	}
}

// TestStatusHidesPassword: the API view carries no credential.
func TestStatusHidesPassword(t *testing.T) {
	s := testSet(t, config.Trunk{Name: "uk", Host: "192.0.2.2", Auth: config.TrunkAuth{User: "u", Password: "hunter2-trunk"},
		Register: config.TrunkRegister{Enabled: true}})
	st := s.Status()
	if len(st) != 1 || st[0].Register.State != StateUnregistered || !st[0].Up {
		t.Fatalf("%+v", st)
	}
	if strings.Contains(strings.ToLower(fmtAll(st)), "hunter2") {
		t.Fatal("password in status")
	}
}
