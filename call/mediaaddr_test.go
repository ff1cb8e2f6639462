package call

import (
	"net/netip"
	"testing"
)

func TestURIHost(t *testing.T) {
	for uri, want := range map[string]string{
		"sip:agent@192.0.2.7:5062;transport=udp": "192.0.2.7",
		"sip:192.0.2.8":                          "192.0.2.8",
		"<sip:a@[2001:db8::1]:5060>":             "2001:db8::1",
		"sips:a@[2001:db8::2]":                   "2001:db8::2",
		"sip:agent@pbx.example.com":              "invalid IP",
	} {
		if got := uriHost(uri).String(); got != want {
			t.Errorf("uriHost(%q) = %s, want %s", uri, got, want)
		}
	}
}

// With a wildcard MediaAddr, SDP advertises this host's address towards
// the peer, never the wildcard and never loopback for a peer elsewhere.
func TestMediaAddrFor(t *testing.T) {
	m := &Manager{cfg: Config{MediaAddr: netip.MustParseAddr("192.0.2.1")}}
	if a, err := m.mediaAddrFor(netip.MustParseAddr("198.51.100.1")); err != nil || a.String() != "192.0.2.1" {
		t.Errorf("set MediaAddr: %v, %v", a, err)
	}
	m.cfg.MediaAddr = netip.IPv4Unspecified()
	a, err := m.mediaAddrFor(netip.MustParseAddr("127.0.0.1"))
	if err != nil || a.String() != "127.0.0.1" {
		t.Errorf("wildcard towards loopback: %v, %v", a, err)
	}
	if _, err := m.mediaAddrFor(netip.Addr{}); err == nil {
		t.Error("wildcard towards nowhere: no error")
	}
}
