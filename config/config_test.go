package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config is invalid: %v", err)
	}
	if c.SIP.Listen != "127.0.0.1:5060" {
		t.Errorf("default listen %q", c.SIP.Listen)
	}
}

func TestParseOverridesOnlyWhatIsGiven(t *testing.T) {
	c, err := Parse(strings.NewReader("sip:\n  listen: 127.0.0.1:5070\nrtp:\n  inactivity_timeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != "127.0.0.1:5070" || c.RTP.InactivityTimeout != 5*time.Second {
		t.Errorf("overrides lost: %+v", c)
	}
	if c.RTP.Ports != Default().RTP.Ports || len(c.SIP.Transports) != 2 {
		t.Errorf("defaults lost: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseEmpty(t *testing.T) {
	c, err := Parse(strings.NewReader("  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != Default().SIP.Listen {
		t.Error("empty file does not give defaults")
	}
}

func TestParseRefusesUnknownField(t *testing.T) {
	_, err := Parse(strings.NewReader("sip:\n  lisen: 127.0.0.1:5060\n"))
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("want an error naming the unknown field, got %v", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	tests := []struct {
		yaml string
		path string
	}{
		{"sip:\n  listen: localhost\n", "sip.listen"},
		{"sip:\n  listen: 127.0.0.1:0\n", "sip.listen"},
		{"sip:\n  advertise: nowhere\n", "sip.advertise"},
		{"sip:\n  transports: [udp, sctp]\n", "sip.transports[1]"},
		{"sip:\n  transports: []\n", "sip.transports"},
		{"sip:\n  allow: [10.0.0.0/8, bogus]\n", "sip.allow[1]"},
		{"sip:\n  max_calls: -1\n", "sip.max_calls"},
		{"sip:\n  t1: 10ms\n", "sip.t1"},
		{"sip:\n  t1: 0s\n", "sip.t1"},
		{"sip:\n  t1: 1m\n", "sip.t1"},
		{"sip:\n  auth:\n    max_failures: 0\n", "sip.auth.max_failures"},
		{"sip:\n  auth:\n    lock_for: 0s\n", "sip.auth.lock_for"},
		{"sip:\n  auth:\n    backoff: -1s\n", "sip.auth.backoff"},
		{"sip:\n  auth:\n    backoff: 10m\n", "sip.auth.backoff"},
		{"sip:\n  auth:\n    nonce_lifetime: 1s\n", "sip.auth.nonce_lifetime"},
		{"sip:\n  auth:\n    algorithms: []\n", "sip.auth.algorithms"},
		{"sip:\n  auth:\n    algorithms: [MD5, SHA-1]\n", "sip.auth.algorithms[1]"},
		{"sip:\n  auth:\n    algorithms: [MD5, MD5]\n", "sip.auth.algorithms[1]"},
		{"rtp:\n  ports: 30000\n", "rtp.ports"},
		{"rtp:\n  ports: 30000-20000\n", "rtp.ports"},
		{"rtp:\n  ports: 80-90\n", "rtp.ports"},
		{"rtp:\n  address: here\n", "rtp.address"},
		{"rtp:\n  inactivity_timeout: 10ms\n", "rtp.inactivity_timeout"},
		{"rtp:\n  io: epoll\n", "rtp.io"},
		{"rtp:\n  workers: -1\n", "rtp.workers"},
		{"data:\n  dir: \"\"\n", "data.dir"},
		{"log:\n  level: loud\n", "log.level"},
		{"log:\n  format: xml\n", "log.format"},
		{"shutdown:\n  mode: maybe\n", "shutdown.mode"},
		{"limits:\n  max_cpu: 85\n", "limits.max_cpu"},
		{"limits:\n  max_cpu: -0.1\n", "limits.max_cpu"},
		{"limits:\n  max_lag: -1ms\n", "limits.max_lag"},
		{"limits:\n  max_recorder_backlog: -1ms\n", "limits.max_recorder_backlog"},
		{"limits:\n  retry_after: 0s\n", "limits.retry_after"},
		{"limits:\n  retry_after: 2h\n", "limits.retry_after"},
		{"limits:\n  hold: 10ms\n", "limits.hold"},
		{"limits:\n  interval: 1ms\n", "limits.interval"},
		{"limits:\n  trip_samples: 0\n", "limits.trip_samples"},
		{"limits:\n  pace_at: 1\n", "limits.pace_at"},
		{"limits:\n  pace_at: 0.2\n", "limits.pace_at"},
		{"limits:\n  pace_calls: 0\n", "limits.pace_calls"},
		{"routes:\n  sales: nowhere\n", "routes.sales"},
		{"recording:\n  default: sometimes\n", "recording.default"},
		{"recording:\n  routes:\n    main: loud\n", "recording.routes.main"},
		{"recording:\n  min_free: lots\n", "recording.min_free"},
		{"recording:\n  min_free: 150%\n", "recording.min_free"},
		{"recording:\n  min_free: 12XB\n", "recording.min_free"},
		{"recording:\n  on_unavailable: maybe\n", "recording.on_unavailable"},
		{"recording:\n  recover: delete\n", "recording.recover"},
		{"capture:\n  hep: homer\n", "capture.hep"},
		{"dtmf:\n  mode: sometimes\n", "dtmf.mode"},
		{"dtmf:\n  routes:\n    pay: rfc2833\n", "dtmf.routes.pay"},
		{"sip:\n  listen: 0.0.0.0:5060\n", "agents[0].password"},
		{"queues:\n  - name: q\n    dtmf: shout\n", "queues[0].dtmf"},
		{"agents:\n  - name: x\n    queues: [nope]\n", "agents[0].queues[0]"},
		{"flows:\n  endpoints:\n    payment_gateway: ftp://x\n", "flows.endpoints.payment_gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = c.Validate()
			if err == nil {
				t.Fatalf("%q validated", tt.yaml)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.path+": ") {
				t.Fatalf("error %q does not name %s", err, tt.path)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid")
			}
		})
	}
}

func TestAllowNetsAcceptsBareAddresses(t *testing.T) {
	c := Default()
	c.SIP.Allow = []string{"192.0.2.7", "10.1.2.3/8", "::1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	nets := c.AllowNets()
	if len(nets) != 3 || nets[0].String() != "192.0.2.7/32" || nets[1].String() != "10.0.0.0/8" || nets[2].String() != "::1/128" {
		t.Fatalf("nets %v", nets)
	}
}

// TestExampleIsTheDefault keeps docs/cloak.example.yaml true: it must parse
// and equal Default().
func TestExampleIsTheDefault(t *testing.T) {
	f, err := os.Open("../docs/cloak.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Default()
	if !reflect.DeepEqual(normalise(c), normalise(want)) {
		t.Fatalf("docs/cloak.example.yaml differs from Default():\n got %+v\nwant %+v", c, want)
	}
}

// normalise treats nil and empty maps and slices alike.
func normalise(c Config) Config {
	if len(c.SIP.Allow) == 0 {
		c.SIP.Allow = nil
	}
	if len(c.Flows.Endpoints) == 0 {
		c.Flows.Endpoints = nil
	}
	if len(c.Trunks) == 0 {
		c.Trunks = nil
	}
	return c
}

func TestParseMinFree(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bytes uint64
		pct   float64
	}{
		{"", 0, 0}, {"512MiB", 512 << 20, 0}, {"1GiB", 1 << 30, 0}, {"2GB", 2e9, 0}, {"1048576", 1 << 20, 0},
		{"64 kib", 64 << 10, 0}, {"5%", 0, 5}, {"0.5%", 0, 0.5},
	} {
		b, p, err := ParseMinFree(tc.in)
		if err != nil || b != tc.bytes || p != tc.pct {
			t.Errorf("ParseMinFree(%q) = %d, %v, %v; want %d, %v", tc.in, b, p, err, tc.bytes, tc.pct)
		}
	}
	for _, in := range []string{"-1", "0%", "101%", "MiB", "1.5GiB", "99999999999999999999", "20000000TiB"} {
		if _, _, err := ParseMinFree(in); err == nil {
			t.Errorf("ParseMinFree(%q) accepted", in)
		}
	}
}

// TestSRTPSuitesDefault: rtp.srtp_suites defaults to GCM first (the
// cheapest per packet), and a list in the file replaces the default.
func TestSRTPSuitesDefault(t *testing.T) {
	if got := Default().RTP.SRTPSuites; !slices.Equal(got, []string{"AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}) {
		t.Fatalf("default rtp.srtp_suites %v", got)
	}
	c, err := Parse(strings.NewReader("rtp:\n  srtp_suites: [AES_CM_128_HMAC_SHA1_80]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || !slices.Equal(c.RTP.SRTPSuites, []string{"AES_CM_128_HMAC_SHA1_80"}) {
		t.Fatalf("rtp.srtp_suites %v: %v", c.RTP.SRTPSuites, err)
	}
}

func TestRTPSourceDefaultAndValidation(t *testing.T) {
	c := Default()
	if c.RTP.Source != "strict" || c.RTP.LearnPackets != 4 {
		t.Fatalf("defaults: source %q learn_packets %d; want strict, 4", c.RTP.Source, c.RTP.LearnPackets)
	}
	for _, tc := range []struct {
		yaml, path string
	}{
		{"rtp:\n  source: latch\n", "rtp.source"},
		{"rtp:\n  source: \"\"\n", "rtp.source"},
		{"rtp:\n  learn_packets: 1\n", "rtp.learn_packets"},
		{"rtp:\n  learn_packets: 65\n", "rtp.learn_packets"},
		{"rtp:\n  rtcp:\n    interval: 500ms\n", "rtp.rtcp.interval"},
		{"rtp:\n  rtcp:\n    interval: 2m\n", "rtp.rtcp.interval"},
		{"rtp:\n  rtcp:\n    mux: sometimes\n", "rtp.rtcp.mux"},
		{"rtp:\n  srtp: required\n", "rtp.srtp"},
		{"agents:\n  - name: x\n    password: y\n    srtp: yes\n", "agents[0].srtp"},
		{"rtp:\n  srtp_routes:\n    trunk: always\n", "rtp.srtp_routes.trunk"},
		{"rtp:\n  srtp_suites: []\n", "rtp.srtp_suites"},
		{"rtp:\n  srtp_suites: [F8_128_HMAC_SHA1_80]\n", "rtp.srtp_suites"},
		{"rtp:\n  srtp_suites: [AEAD_AES_128_GCM, AEAD_AES_128_GCM]\n", "rtp.srtp_suites"},
	} {
		c, err := Parse(strings.NewReader(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.path)
		}
	}
	for _, s := range []string{"strict", "learn", "any"} {
		c, err := Parse(strings.NewReader("rtp:\n  source: " + s + "\n  learn_packets: 8\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("source %s: %v", s, err)
		}
	}
}

// The addresses RTP binds to and SIP and SDP advertise, for each way of
// setting sip.listen, sip.advertise and rtp.address. A wildcard listen
// must neither bind RTP to loopback nor advertise 127.0.0.1 (it
// advertises per call: the unspecified address here), and rtp.address
// must never leak into SIP's Contact.
func TestAdvertisedAddresses(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		listen, advertise, address string
		bind, sdp, contact         string // contact "" = the SIP server's own default
	}{
		{"loopback default", "127.0.0.1:5060", "", "", "127.0.0.1", "127.0.0.1", ""},
		{"wildcard listen", "0.0.0.0:5060", "", "", "0.0.0.0", "0.0.0.0", ""},
		{"wildcard v6 listen", "[::]:5060", "", "", "::", "::", ""},
		{"wildcard behind NAT", "0.0.0.0:5060", "203.0.113.5", "", "0.0.0.0", "203.0.113.5", "203.0.113.5"},
		{"media on its own interface", "0.0.0.0:5060", "203.0.113.5", "198.51.100.20", "198.51.100.20", "198.51.100.20", "203.0.113.5"},
		{"specific listen, rtp.address", "192.0.2.1:5060", "", "192.0.2.2", "192.0.2.2", "192.0.2.2", ""},
		{"rtp.address wildcard", "192.0.2.1:5060", "203.0.113.5", "0.0.0.0", "0.0.0.0", "203.0.113.5", "203.0.113.5"},
	} {
		c := Default()
		c.SIP.Listen, c.SIP.Advertise, c.RTP.Address = tc.listen, tc.advertise, tc.address
		c.Agents = nil // no demo password beyond loopback
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.RTPBindAddr().String(); got != tc.bind {
			t.Errorf("%s: RTP binds %s, want %s", tc.name, got, tc.bind)
		}
		if got := c.RTPAdvertiseAddr().String(); got != tc.sdp {
			t.Errorf("%s: SDP advertises %s, want %s", tc.name, got, tc.sdp)
		}
		got := ""
		if a := c.SIPAdvertiseAddr(); a.IsValid() {
			got = a.String()
		}
		if got != tc.contact {
			t.Errorf("%s: Contact advertises %q, want %q", tc.name, got, tc.contact)
		}
	}
}

// TestArchiveValidateNamesTheField refuses bad archive values, naming
// each field's path.
func TestArchiveValidateNamesTheField(t *testing.T) {
	three := 9
	cases := map[string]func(*Config){
		"archive.dsn":                  func(c *Config) { c.Archive.DSN = "mysql://x" },
		"archive.queue":                func(c *Config) { c.Archive.Queue = 1 },
		"archive.batch":                func(c *Config) { c.Archive.Batch = 0 },
		"archive.retention.recordings": func(c *Config) { c.Archive.Retention.Recordings = "14 days" },
		"archive.retention.traces":     func(c *Config) { c.Archive.Retention.Traces = "-1h" },
		"archive.purge_at":             func(c *Config) { c.Archive.PurgeAt = "25:00" },
		"archive.data.default":         func(c *Config) { c.Archive.Data.Default = "hide" },
		"archive.data.visible":         func(c *Config) { c.Archive.Data.Visible = -1 },
		"archive.data.keys.customer_id.policy": func(c *Config) {
			c.Archive.Data.Keys = map[string]DataKey{"customer_id": {Policy: "mask"}}
		},
		"archive.data.keys.pin_hint.visible": func(c *Config) {
			c.Archive.Data.Keys = map[string]DataKey{"pin_hint": {Policy: DataKeep, Visible: &three}}
		},
		"archive.channel_data[0].header": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-Customer Id", Key: "customer_id"}}
		},
		"archive.channel_data[1].header": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-A", Key: "a"}, {Header: "proxy-authorization", Key: "b"}}
		},
		"archive.channel_data[0].key": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-Card", Key: "card_number"}}
		},
		"archive.channel_data[2].key": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-A", Key: "a"}, {Header: "X-B", Key: "b"}, {Header: "X-C", Key: "a"}}
		},
		"archive.channel_data[3].key": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-A", Key: "a"}, {Header: "X-B", Key: "b"}, {Header: "X-C", Key: "c"}, {Header: "X-Trunk", Key: "trunk"}}
		},
		"archive.channel_data[4].key": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-A", Key: "a"}, {Header: "X-B", Key: "b"}, {Header: "X-C", Key: "c"}, {Header: "X-D", Key: "d"}, {Header: "X-E", Key: "e\x01"}}
		},
		"archive.channel_data[5].key": func(c *Config) {
			c.Archive.ChannelData = []ChannelData{{Header: "X-A", Key: "a"}, {Header: "X-B", Key: "b"}, {Header: "X-C", Key: "c"}, {Header: "X-D", Key: "d"}, {Header: "X-E", Key: "e"}, {Header: "X-Pin", Key: "Account.PIN"}}
		},
	}
	for path, mutate := range cases {
		c := Default()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("%s: got %v", path, err)
		}
	}
	c := Default()
	c.Archive.ChannelData = []ChannelData{{Header: "X-Customer-Id", Key: "customer_id"}, {Header: "X-Campaign", Key: "campaign"}, {Header: "Subject", Key: "shipping_ref"}}
	if err := c.Validate(); err != nil {
		t.Errorf("good channel_data: %v", err)
	}
	for _, ok := range []string{"", "sqlite:/tmp/a.db", "postgres://cloak@127.0.0.1:5432/cloak"} {
		c := Default()
		c.Archive.DSN = ok
		if err := c.Validate(); err != nil {
			t.Errorf("dsn %q: %v", ok, err)
		}
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "14d": 14 * 24 * time.Hour, "36h": 36 * time.Hour} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("%q: got %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-3d", "1.5d", "forever", "-1h"} {
		if _, err := ParseRetention(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

// rtp.max_staleness: 200ms by default, 0 turns it off, anything else is
// 20ms to 10s, and Validate names the field.
func TestRTPMaxStaleness(t *testing.T) {
	if got := Default().RTP.MaxStaleness; got != 200*time.Millisecond {
		t.Fatalf("default max_staleness %v, want 200ms", got)
	}
	for _, tc := range []struct {
		yaml string
		ok   bool
	}{
		{"0s", true}, {"20ms", true}, {"1s", true}, {"10s", true},
		{"-1ms", false}, {"5ms", false}, {"11s", false},
	} {
		c, err := Parse(strings.NewReader("rtp:\n  max_staleness: " + tc.yaml + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		var fe *FieldError
		switch {
		case tc.ok && err != nil:
			t.Errorf("max_staleness %s: %v", tc.yaml, err)
		case !tc.ok && (!errors.As(err, &fe) || !strings.Contains(err.Error(), "rtp.max_staleness:")):
			t.Errorf("max_staleness %s: %v, want an error naming rtp.max_staleness", tc.yaml, err)
		}
	}
}
