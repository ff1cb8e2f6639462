package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/sdes"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// SIP is the signalling side.
	SIP SIP `yaml:"sip"`
	// RTP is the media side.
	RTP RTP `yaml:"rtp"`
	// Data is where state that survives a restart lives.
	Data Data `yaml:"data"`
	// Log is the process log.
	Log Log `yaml:"log"`
	// Shutdown is what SIGTERM/SIGINT do.
	Shutdown Shutdown `yaml:"shutdown"`
	// Limits is admission control: when the node is overloaded, new
	// calls get 503 rather than every call on it suffering.
	Limits Limits `yaml:"limits"`
	// Routes maps the called user part (the Request-URI user) to what
	// answers it: "echo" (echoes the caller's audio), "tone" (1004 Hz test
	// tone), "ring" (rings and never answers: for CANCEL and no-answer
	// tests), "prompt:NAME" (plays NAME.wav, then hangs up), "flow:NAME",
	// or "dial:SIP-URI" (bridges straight to that URI through the gate,
	// DTMF masked: a relay for trunks and load tests; a sips: URI or
	// ;transport=tls dials over TLS and needs tls in sip.transports).
	Routes map[string]string `yaml:"routes"`
	// Prompts is where prompts are read from.
	Prompts Prompts `yaml:"prompts"`
	// Flows are the IVR flows.
	Flows Flows `yaml:"flows"`
	// Agents are the people callers are queued for.
	Agents []Agent `yaml:"agents"`
	// Queues hand callers to agents.
	Queues []Queue `yaml:"queues"`
	// Features are in-call codes agents key.
	Features Features `yaml:"features"`
	// Admin is the HTTP API.
	Admin Admin `yaml:"admin"`
	// Recording is call recording.
	Recording Recording `yaml:"recording"`
	// DTMF is which of a caller's DTMF sources count as keys.
	DTMF DTMF `yaml:"dtmf"`
	// Capture is SIP and RTP capture for troubleshooting.
	Capture Capture `yaml:"capture"`
	// Archive keeps finished interactions (docs/ARCHIVE.md).
	Archive Archive `yaml:"archive"`
	// Fraud is fraud screening of phone payments (docs/FRAUD.md).
	Fraud Fraud `yaml:"fraud"`
	// Payments are agent-assisted payments (docs/PAYMENTS.md).
	Payments Payments `yaml:"payments"`
	// PCI, when true, turns media and protocol capture off whatever
	// capture says, and says so at start (PCI DSS: no cardholder data in
	// troubleshooting captures).
	PCI bool `yaml:"pci"`
	// Metrics is the Prometheus exposition at /metrics on the admin
	// listener (docs/METRICS.md).
	Metrics Metrics `yaml:"metrics"`
	// Monitor is supervisors listening, coaching and barging on live
	// calls (docs/MONITORING.md); who may monitor which queue is
	// queues[].supervisors.
	Monitor Monitor `yaml:"monitor"`
	// Trunks are the SIP trunks carriers deliver (docs/TRUNKS.md): how
	// their INVITEs are identified, how their numbers are read, whether
	// cloak registers to them, and which tel: targets leave through
	// them. None by default.
	Trunks []Trunk `yaml:"trunks"`
	// Cluster is the state several nodes share in PostgreSQL
	// (docs/SCALE.md); off by default.
	Cluster Cluster `yaml:"cluster"`
}

// Monitor configures supervisors' monitor legs.
type Monitor struct {
	// MaxPerCall is how many supervisors may monitor one call at once
	// (1 to 10).
	MaxPerCall int `yaml:"max_per_call"`
	// Beep plays a short tone to caller and agent when a supervisor
	// joins (some jurisdictions require it); off, a monitor is announced
	// to nobody.
	Beep bool `yaml:"beep"`
	// RingTimeout is how long the supervisor's phone rings before the
	// monitor request fails.
	RingTimeout time.Duration `yaml:"ring_timeout"`
}

// Payments configures agent-assisted payments: the agent opens a payment
// on a live call and the caller keys the card while both keep talking
// (docs/PAYMENTS.md). The card goes to flows.endpoints.payment_gateway.
type Payments struct {
	// Timeout ends a payment that was not submitted in time.
	Timeout time.Duration `yaml:"timeout"`
	// MaskTone is what the agent hears for each key the caller presses:
	// flat (one neutral tone of fixed pitch and length) or silence.
	MaskTone string `yaml:"mask_tone"`
	// InterDigitTimeout ends a field's entry when the caller stops keying.
	InterDigitTimeout time.Duration `yaml:"inter_digit_timeout"`
	// Fraud screens a submitted payment as a flow's fraud: true step does
	// (held instead of captured); it needs fraud.enabled.
	Fraud bool `yaml:"fraud"`
	// Attempts is how many entries each field gets (1–10, as a flow's
	// collect attempts); an invalid last entry ends the payment.
	Attempts int `yaml:"attempts"`
}

// Metrics configures /metrics on the admin listener. API users and tokens
// whose role holds metrics.view may scrape it; TokenFile adds a token that
// may scrape it and nothing else (docs/SECURITY.md, "Metrics").
type Metrics struct {
	// Enabled serves /metrics (when admin.listen is set).
	Enabled bool `yaml:"enabled"`
	// TokenFile is a file holding a bearer token that may read /metrics
	// and nothing else (Authorization: Bearer TOKEN; surrounding
	// whitespace ignored); empty: API tokens with metrics.view only. Read
	// at start.
	TokenFile string `yaml:"token_file"`
}

// DTMF chooses which of a caller's DTMF sources count as keys: the IVR's
// digits and the keys counted while talking. Whatever the mode, RFC 4733
// events and in-band tones are kept from agents and recordings as the
// secure gate and the queue say; SIP INFO digits always count.
type DTMF struct {
	// Mode is auto (in-band tones until the call's first RFC 4733 event,
	// then events only), rfc4733, inband or info.
	Mode string `yaml:"mode"`
	// Routes sets the mode per called user part.
	Routes map[string]string `yaml:"routes"`
}

// suiteNames are the SDP names of suites.
func suiteNames(suites []sdes.Suite) []string {
	out := make([]string, len(suites))
	for i, s := range suites {
		out[i] = s.String()
	}
	return out
}

// SRTPModes are the values of rtp.srtp and rtp.srtp_routes.
var SRTPModes = []string{"off", "optional", "mandatory"}

// DTMFModes are the values of dtmf.mode.
var DTMFModes = []string{"auto", "rfc4733", "inband", "info"}

// Recording configures call recording.
type Recording struct {
	// Dir holds the recordings (YYYY/MM/DD/<call>.wav + .json). Empty
	// means DATA/recordings.
	Dir string `yaml:"dir"`
	// KeyFile holds the HMAC key that signs recordings' sidecars. Empty
	// means DATA/recording.key, created (mode 0600) on first start.
	KeyFile string `yaml:"key_file"`
	// Default is the policy of routes not listed: always, consent,
	// on_demand or never.
	Default string `yaml:"default"`
	// Routes sets the policy per called user part.
	Routes map[string]string `yaml:"routes"`
	// AgentCode, keyed by the agent, pauses the recording, and again
	// resumes it. Empty disables it.
	AgentCode string `yaml:"agent_code"`
	// MinFree is the free space the recordings' filesystem must have for
	// a new call on a route whose policy is always to be recorded: a size
	// ("512MiB", "2GB", "1048576" bytes) or a share of the filesystem
	// ("5%"). Empty means the smaller of 1 GiB and 5 %. Checked at call
	// set-up (statfs, at most once a second).
	MinFree string `yaml:"min_free"`
	// OnUnavailable is what such a call gets below MinFree: "refuse"
	// (503 Service Unavailable with Retry-After, so a dispatcher tries
	// another node) or "continue" (answered unrecorded, with a
	// recording_unavailable event and a warning).
	OnUnavailable string `yaml:"on_unavailable"`
	// Recover is what start-up does with recordings a crash left
	// unfinished (.part files): "repair" (header set to the audio on
	// disk, sidecar marked recovered and signed) or "quarantine" (moved
	// unrepaired to DIR/quarantine).
	Recover string `yaml:"recover"`
}

// ParseMinFree parses a Recording.MinFree value: a size with an optional
// unit (B, kB, MB, GB, TB; KiB, MiB, GiB, TiB; case-insensitive) or a
// percentage ("5%", more than 0 and at most 100). Empty gives zeros
// (the default rule).
func ParseMinFree(s string) (bytes uint64, percent float64, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 100) {
			return 0, 0, fmt.Errorf("want a percentage above 0 and at most 100, got %q", s)
		}
		return 0, v, nil
	}
	units := []struct {
		suffix string
		mult   uint64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
	}
	num, mult := strings.ToLower(s), uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil || v > (1<<63)/mult {
		return 0, 0, fmt.Errorf("want a size like 512MiB or 2GB, or a percentage like 5%%, got %q", s)
	}
	return v * mult, 0, nil
}

// Capture configures protocol and media capture.
type Capture struct {
	// SIPPcap writes every SIP message to DATA/captures/sip-<start>.pcap.
	SIPPcap bool `yaml:"sip_pcap"`
	// RTPPcap writes every RTP packet to DATA/captures/rtp-<start>.pcap.
	RTPPcap bool `yaml:"rtp_pcap"`
	// HEP sends SIP messages to a HEPv3 collector (Homer) at host:port.
	HEP string `yaml:"hep"`
	// HEPAgentID is the capture agent id in HEP packets.
	HEPAgentID uint32 `yaml:"hep_agent_id"`
}

// Agent is one agent.
type Agent struct {
	// Name is the agent's name and the SIP user its softphone registers as.
	Name string `yaml:"name"`
	// URI is a static SIP URI to call the agent at; empty means the agent
	// logs in by REGISTER.
	URI string `yaml:"uri"`
	// Password authenticates the agent's REGISTER (digest).
	Password string `yaml:"password"`
	// Queues the agent answers.
	Queues []string `yaml:"queues"`
	// User is the API user (cloak users add) this agent is: signed in
	// with role agent, they see and act on the calls bridged to this
	// agent only. Empty: no user is linked (cloak users add -agent links
	// one too).
	User string `yaml:"user"`
	// SRTP is the SRTP mode of the legs cloak places to this agent:
	// "off", "optional" or "mandatory" (rtp.srtp's meanings), or empty
	// for rtp.srtp: a softphone on a trusted LAN may stay plain while the
	// trunk is encrypted, or the other way round.
	SRTP string `yaml:"srtp"`
}

// Queue is one queue.
type Queue struct {
	// Name is what flows transfer to: "queue:NAME".
	Name string `yaml:"name"`
	// Timeout is the longest a caller waits before the flow's failure path.
	Timeout time.Duration `yaml:"timeout"`
	// RingTimeout is how long one agent rings before the next is tried.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// HoldPrompt plays while the caller waits (and to a reserved agent).
	HoldPrompt string `yaml:"hold_prompt"`
	// DTMF is what the agent gets of the caller's digits in normal mode:
	// "pass" (RFC 4733 events forwarded) or "mask" (events dropped and
	// in-band tones removed before the agent hears them). Secure mode
	// always masks.
	DTMF string `yaml:"dtmf"`
	// CollectWhileTalking, with dtmf: mask, gathers digits the caller keys
	// while talking; the agent sees only their mask through the API.
	CollectWhileTalking bool `yaml:"collect_while_talking"`
	// Supervisors are the users who may listen to, coach and barge on
	// this queue's calls (docs/MONITORING.md); none means nobody may.
	Supervisors []string `yaml:"supervisors"`
}

// Features are agents' in-call feature codes.
type Features struct {
	// SecureCode, keyed by the agent while bridged, sends the caller into
	// SecureFlow; the agent stays reserved. Empty disables it.
	SecureCode string `yaml:"secure_code"`
	// SecureFlow is the agent-referred flow SecureCode starts.
	SecureFlow string `yaml:"secure_flow"`
	// PaymentCode, keyed by the agent while bridged, opens an
	// agent-assisted payment (docs/PAYMENTS.md) for the amount, currency
	// and reference in the call's participant data (payment_amount,
	// payment_currency, payment_reference: set by the flow's set_data
	// steps); without a valid amount and currency it is refused, logged
	// and announced on the call's event stream. Empty disables it.
	PaymentCode string `yaml:"payment_code"`
	// MonitorCode is the prefix a supervisor dials, followed by an
	// agent's name (agents[].name), to monitor that agent's live call
	// on the phone they dial from: *55alice (docs/MONITORING.md,
	// "Dialling in"). The INVITE must authenticate as a user
	// (sip.invite_auth: users) who supervises the call's queue. Empty
	// disables it.
	MonitorCode string `yaml:"monitor_code"`
}

// Admin configures the HTTP API.
type Admin struct {
	// Listen is the API's address; empty disables it.
	Listen string `yaml:"listen"`
	// Pprof mounts Go's profiler at /debug/pprof/ on the API listener.
	// Off by default: goroutine dumps print function arguments.
	Pprof bool `yaml:"pprof"`
	// TLS, when cert_file and key_file are set, serves the API over HTTPS
	// (certificates reloaded on SIGHUP and when the files change).
	TLS AdminTLS `yaml:"tls"`
	// AllowPlain lets Listen be beyond loopback without TLS (warned at
	// start); without it such a listen address is refused.
	AllowPlain bool `yaml:"allow_plain"`
	// Auth is how users sign in to the API (docs/SECURITY.md, "Users and
	// roles").
	Auth AdminAuth `yaml:"auth"`
}

// AdminAuth configures users' sessions. Users and API tokens are in the
// archive database (cloak users, cloak tokens); failed sign-ins share
// sip.auth's limiter (max_failures, lock_for, backoff).
type AdminAuth struct {
	// SessionIdle ends a browser session unused this long.
	SessionIdle time.Duration `yaml:"session_idle"`
	// SessionMax ends a browser session this long after sign-in, used
	// or not.
	SessionMax time.Duration `yaml:"session_max"`
	// Demo accepts any non-empty password (no minimum length or deny
	// list); refused with admin.listen beyond loopback.
	Demo bool `yaml:"demo"`
}

// AgentOfUser returns the name of the agent whose user is user, or "".
func (c Config) AgentOfUser(user string) string {
	for _, a := range c.Agents {
		if a.User != "" && a.User == user {
			return a.Name
		}
	}
	return ""
}

// HasAgent reports whether name is one of agents[].
func (c Config) HasAgent(name string) bool {
	for _, a := range c.Agents {
		if a.Name == name {
			return true
		}
	}
	return false
}

// AdminTLS is the HTTPS key pair of the API.
type AdminTLS struct {
	// CertFile is the PEM certificate chain; empty serves plain HTTP.
	CertFile string `yaml:"cert_file"`
	// KeyFile is CertFile's PEM private key.
	KeyFile string `yaml:"key_file"`
}

// FlowsTLS configures how data actions reach HTTPS endpoints.
type FlowsTLS struct {
	// CAFile is a PEM bundle of CAs trusted for endpoints' certificates
	// (a private CA) instead of the system roots; empty uses the system's.
	CAFile string `yaml:"ca_file"`
	// ClientCertFile and ClientKeyFile, when set, are presented to
	// endpoints that ask for a client certificate (mutual TLS).
	ClientCertFile string `yaml:"client_cert_file"`
	// ClientKeyFile is ClientCertFile's PEM private key.
	ClientKeyFile string `yaml:"client_key_file"`
}

// Flows configures the IVR flows.
type Flows struct {
	// Dir is a directory of flow YAML files, checked at start (a bad flow
	// refuses the start, naming file and step). Empty uses the demo flows
	// embedded in the binary (main, pay, secure-pay).
	Dir string `yaml:"dir"`
	// Endpoints maps data_action endpoint names to URLs. When
	// payment_gateway is not set, cloak serves its demo gateway on
	// loopback (approves Luhn-valid cards with a future expiry).
	Endpoints map[string]string `yaml:"endpoints"`
	// TLS is the trust (and client certificate) for https endpoints. A
	// step that sends a secret (a card) may only use an https endpoint,
	// verified, or one on loopback (the demo gateway).
	TLS FlowsTLS `yaml:"tls"`
}

// SIP configures the SIP user agent.
type SIP struct {
	// Listen is the address:port UDP and TCP listen on.
	Listen string `yaml:"listen"`
	// Advertise is the address put in Contact and Via, and in SDP unless
	// rtp.address is set (a NAT's public address, say). Empty means
	// Listen's address; with a wildcard Listen (0.0.0.0 or ::), SDP then
	// advertises, per call, this host's address on the route to the
	// INVITE's sender.
	Advertise string `yaml:"advertise"`
	// Transports lists the transports to listen on: udp, tcp, tls (TLS
	// listens on tls.listen, RFC 3261 §26).
	Transports []string `yaml:"transports"`
	// TLS configures SIP over TLS, used when transports lists tls.
	TLS SIPTLS `yaml:"tls"`
	// Allow is the allow-list of source networks (CIDRs) for trunks; empty
	// allows every source (with a warning when listening beyond loopback).
	Allow []string `yaml:"allow"`
	// MaxCalls caps concurrent calls; beyond it INVITEs get 503. 0 = no cap.
	MaxCalls int `yaml:"max_calls"`
	// UserAgent is our Server/User-Agent header.
	UserAgent string `yaml:"user_agent"`
	// T1 is the round-trip estimate SIP's timers are built on (RFC 3261
	// §17.1.1.1, 500 ms): retransmissions over UDP start at T1, and a
	// transaction, or an answer whose ACK never comes (§13.3.1.4), gives
	// up after 64*T1. Larger suits long-RTT links; smaller only a
	// managed network.
	T1 time.Duration `yaml:"t1"`
	// Auth guards REGISTER's digest authentication against guessing.
	Auth SIPAuth `yaml:"auth"`
	// Unknown is what an INVITE from a source beyond loopback that is no
	// trunk's and no registered agent's gets: reject (403 "Unknown
	// Source") or allow (docs/TRUNKS.md).
	Unknown string `yaml:"unknown"`
	// UnknownLoopback is the same for sources on loopback (the demo and
	// local tests): reject or allow.
	UnknownLoopback string `yaml:"unknown_loopback"`
	// InviteAuth is what an INVITE whose From names a user (agents[] with
	// a password: an agent's or a supervisor's phone) must do: "users"
	// (challenged with 401, accepted only with that user's digest, with
	// REGISTER's nonces, replay check and auth limiter; RFC 3261 §22)
	// or "off" (not challenged; such calls carry no user, so *55 is
	// refused). Callers whose From names no user are never challenged
	// (docs/SECURITY.md, "INVITEs from users").
	InviteAuth string `yaml:"invite_auth"`
}

// SIPTLS configures SIP over TLS (RFC 3261 §26.2, sips: URIs per RFC
// 5630). The key pair is reloaded on SIGHUP and when its files change;
// calls up keep their connection.
type SIPTLS struct {
	// Listen is the address:port TLS listens on (5061 by convention).
	Listen string `yaml:"listen"`
	// CertFile is the PEM certificate chain cloak presents, as server and,
	// for outbound TLS legs, as client.
	CertFile string `yaml:"cert_file"`
	// KeyFile is CertFile's PEM private key.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, turns on mutual TLS: a peer must present a
	// certificate signed by one of these CAs (PEM). The same CAs are
	// trusted, beside the system roots, for the peers cloak dials.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the oldest TLS version accepted: 1.2 or 1.3.
	MinVersion string `yaml:"min_version"`
}

// SIPAuth configures the failed-attempt limiter of REGISTER, per source IP
// and per username: each failure opens a back-off window (Backoff,
// doubling per failure) in which attempts get 403 unchecked and count as
// failures; MaxFailures in a row lock the source or user for LockFor
// (403, one "auth locked" log line for fail2ban). A success resets.
type SIPAuth struct {
	// MaxFailures is the number of failures in a row that locks a source
	// IP or a username.
	MaxFailures int `yaml:"max_failures"`
	// LockFor is how long a lock lasts; failures idle this long are
	// forgotten. Locks always end: a phone left with a wrong password
	// retries once a window.
	LockFor time.Duration `yaml:"lock_for"`
	// Backoff is the back-off window after the first failure; it doubles
	// with each further one, capped at LockFor. 0 disables back-off.
	Backoff time.Duration `yaml:"backoff"`
	// NonceLifetime is how long a digest nonce may be used; after it the
	// phone is told stale=true and re-authenticates without the user.
	NonceLifetime time.Duration `yaml:"nonce_lifetime"`
	// Algorithms are the digest algorithms offered (one challenge each,
	// in this order) and accepted: SHA-256, MD5 (RFC 7616, RFC 8760).
	// Phones that read only the first challenge and know only MD5 need
	// MD5 listed first.
	Algorithms []string `yaml:"algorithms"`
}

// RTP configures media endpoints.
type RTP struct {
	// Ports is the RTP port range "LO-HI" (even ports are used, one per leg).
	Ports string `yaml:"ports"`
	// Address is the IP RTP sockets bind to and SDP advertises. Empty means
	// sockets bind to sip.listen's address and SDP advertises sip.advertise,
	// or sip.listen's address, or (listen on a wildcard) per call this
	// host's address on the route to the INVITE's sender.
	Address string `yaml:"address"`
	// InactivityTimeout ends a call with BYE when no RTP arrived for this
	// long (calls on hold are exempt). 0 disables it.
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"`
	// IO is how RTP sockets are read: "poll" (a few epoll workers serve
	// every leg; Linux) or "goroutine" (one goroutine per leg, Go's
	// netpoller). "poll" is cheaper per packet under load; on other
	// systems cloak falls back to "goroutine".
	IO string `yaml:"io"`
	// Workers is the number of poll workers; 0 means one per CPU.
	Workers int `yaml:"workers"`
	// Source is which sources a leg accepts RTP from: "strict" (only the
	// address and port the SDP names), "learn" (the SDP's IP; another
	// port only after LearnPackets consecutive packets from it, for NATs
	// that rewrite the port) or "any" (the first sender from anywhere is
	// latched to: anyone who reaches the port first takes the call's
	// media; warned about at start). Packets from other sources are
	// dropped and counted per leg (docs/SECURITY.md).
	Source string `yaml:"source"`
	// LearnPackets is the run of consecutive packets (one SSRC, sequence
	// numbers in order) source: learn needs before it accepts a new
	// source port, 2 to 64.
	LearnPackets int `yaml:"learn_packets"`
	// MaxStaleness drops received voice older than this when read, judged
	// by its RTP timestamp against the stream's best recent transit (RFC
	// 3550 A.8), instead of relaying a backlog that keeps the call late
	// after an overload; counted per leg (dropped_stale). While the
	// relay is more than this behind, each datagram's wait in its
	// socket queue is measured too and voice that waited longer is shed
	// (media/stale.go, "Queue sojourn"). Telephone events and comfort
	// noise are never dropped. 0 disables it; at least 20ms, at most 10s
	// otherwise.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// RTCP is RTCP (RFC 3550 §6) on every leg: reports both ways and the
	// per-leg call-quality figures (loss, jitter, round trip, MOS).
	RTCP RTCP `yaml:"rtcp"`
	// SRTP is SRTP (RFC 3711) with SDES keys (RFC 4568 a=crypto) on the
	// legs, for calls to routes not in SRTPRoutes and for the legs cloak
	// places (agents, dial:): "off" (plain RTP; RTP/SAVP offers get 488),
	// "optional" (RTP/SAVP offers answered with SRTP, RTP/AVP ones in
	// clear; cloak offers RTP/AVP) or "mandatory" (plain offers get 488;
	// cloak offers RTP/SAVP). Keys travel only in SDP over SIP over TLS
	// unless SRTPOverPlainSIP (docs/SECURITY.md).
	SRTP string `yaml:"srtp"`
	// SRTPRoutes sets the SRTP mode per called user part (a trunk's
	// number mandatory, a LAN test route off).
	SRTPRoutes map[string]string `yaml:"srtp_routes"`
	// SRTPOverPlainSIP lets SDES keys travel in SDP over UDP or TCP SIP.
	// Whoever reads that signalling reads the keys, so SRTP then protects
	// nothing against them; cloak warns at start when it is on.
	SRTPOverPlainSIP bool `yaml:"srtp_over_plain_sip"`
	// SRTPSuites are the SDES crypto suites cloak may use, in order of
	// preference: its offers list them in this order, and its answers
	// choose, among the offer's a=crypto lines, the one whose suite comes
	// first here (RFC 4568 §7.1.2). The default puts AEAD_AES_128_GCM
	// (RFC 7714) first, the cheapest per packet with AES-NI
	// (docs/PERFORMANCE.md), then AES_CM_128_HMAC_SHA1_80 and _32 (RFC
	// 4568 §6.2); a peer that does not speak GCM gets AES-CM. Leaving a
	// suite out refuses offers that have only it (488).
	SRTPSuites []string `yaml:"srtp_suites"`
}

// RTCP configures RTCP on the legs.
type RTCP struct {
	// Enabled binds each leg's RTCP port (RTP's + 1), sends reports (SR
	// while we send, else RR, with SDES CNAME; BYE at hang-up) and reads
	// the peer's. Off, no RTCP port is bound and RTCP muxed on the RTP
	// port is dropped and counted as a payload type not agreed; the
	// receive figures (loss, jitter, MOS) are kept anyway.
	Enabled bool `yaml:"enabled"`
	// Interval is the mean time between our reports, randomised ×0.5-1.5
	// (RFC 3550 §6.2, §6.3.1); 1s to 60s.
	Interval time.Duration `yaml:"interval"`
	// Mux is RTCP multiplexing on the RTP port (RFC 5761): "offer"
	// answers a=rtcp-mux when the offer has it (else RTCP uses RTP's
	// port + 1, or the offer's a=rtcp port, RFC 3605), "require" also
	// refuses offers without it (488), "off" never multiplexes.
	Mux string `yaml:"mux"`
}

// Data configures the state directory.
type Data struct {
	// Dir holds recordings, the archive and captures.
	Dir string `yaml:"dir"`
}

// Log configures the process log.
type Log struct {
	// Level is trace, debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (one object a line) or console (human-readable).
	Format string `yaml:"format"`
}

// Shutdown configures graceful termination.
type Shutdown struct {
	// Grace is how long active calls may go on after SIGTERM before cloak
	// hangs them up.
	Grace time.Duration `yaml:"grace"`
	// Mode is "drain" (let calls finish within Grace) or "hangup" (hang up
	// every call at once).
	Mode string `yaml:"mode"`
}

// Limits configures admission control (package overload). A sampler
// reads the node's health every Interval; when any signal reaches its
// limit the node is overloaded: new INVITEs, and OPTIONS outside a
// dialog (a dispatcher's probes), get 503 Service Unavailable with
// Retry-After (RFC 3261 §21.5.4, §20.33), and calls already up carry on.
// It takes calls again once every signal has stayed below 80 % of its
// limit for Hold. sip.max_calls is a signal too: reaching it makes OPTIONS
// 503 as well, and new calls wait until the calls have been below it (not
// 80 % of it) for Hold. A limit of 0 turns its signal off. The
// defaults come from the bench rounds (docs/PERFORMANCE.md, "Admission
// control").
type Limits struct {
	// MaxCPU is the process's CPU share at which new calls are refused:
	// CPU time (user and system) over wall time, as a share of the cores
	// Go may use (GOMAXPROCS), so 1 is every one of them busy.
	MaxCPU float64 `yaml:"max_cpu"`
	// MaxSystemCPU is the busy share of the cores cloak may run on at
	// which new calls are refused: their busy time, whoever's
	// (/proc/stat; Linux only), so 1 is every one of them busy. Those
	// cores are the machine's, or the ones its affinity allows (taskset,
	// a cgroup cpuset) when that excludes some. It catches what MaxCPU
	// cannot: other work on those cores leaving the relay too little CPU.
	MaxSystemCPU float64 `yaml:"max_system_cpu"`
	// MaxLag is the RTP read lag at which new calls are refused: how late
	// the poll workers read datagrams after the kernel received them (the
	// worst of samples every 10 ms). Only rtp.io: poll measures it.
	MaxLag time.Duration `yaml:"max_lag"`
	// MaxRecorderBacklog is the age of the oldest audio waiting for the
	// recorder's writer at which new calls are refused. A writer keeping
	// up shows about 200 ms (its turn); past 640 ms (a recording's queue)
	// frames are dropped.
	MaxRecorderBacklog time.Duration `yaml:"max_recorder_backlog"`
	// RetryAfter is the Retry-After the 503 carries, in whole seconds.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Hold is how long every signal must stay below 80 % of its limit
	// before the node takes calls again (hysteresis: no flapping); at
	// least Interval.
	Hold time.Duration `yaml:"hold"`
	// Interval is how often the signals are sampled.
	Interval time.Duration `yaml:"interval"`
	// TripSamples is how many samples in a row a signal must be at or
	// above its limit to start an episode: 1 reacts at once, more ignore
	// one-off spikes (a GC pause) and react Interval later per sample.
	TripSamples int `yaml:"trip_samples"`
	// PaceAt is the share of each limit from which the node paces new
	// calls before it is overloaded: PaceCalls per Interval, the rest
	// 503 (counted as sip_refused_pacing; OPTIONS still 200). A node
	// that takes calls at the offered rate up to its limits can overshoot
	// them on a fast ramp by what arrives between two samples
	// (docs/PERFORMANCE.md, "Pacing near the limits"). 0, the default,
	// turns pacing off: on the bench machine 0.9 also refused 9-40 of 500
	// calls the node could carry, and its gain at 1,200 offered was not
	// separable from the machine's noise.
	PaceAt float64 `yaml:"pace_at"`
	// PaceCalls is how many new calls the node takes per Interval while
	// pacing.
	PaceCalls int `yaml:"pace_calls"`
}

// Prompts configures where prompt files come from.
type Prompts struct {
	// Dir is a directory of 8 kHz WAV prompts. Empty uses the demo prompts
	// embedded in the binary.
	Dir string `yaml:"dir"`
}

// The range sip.t1 may take: below 50 ms a retransmission can overtake a
// response still on its way on any real path; above 10 s a lost INVITE
// would take over ten minutes (64*T1) to give up on.
const (
	MinT1 = 50 * time.Millisecond
	MaxT1 = 10 * time.Second
)

// Default returns the configuration `cloak serve` runs with when given no
// file: a demo on loopback.
func Default() Config {
	return Config{
		SIP: SIP{
			Listen:     "127.0.0.1:5060",
			Transports: []string{"udp", "tcp"},
			TLS:        SIPTLS{Listen: "127.0.0.1:5061", MinVersion: "1.2"},
			MaxCalls:   2000,
			UserAgent:  "cloak",
			T1:         500 * time.Millisecond,
			Auth: SIPAuth{
				MaxFailures:   10,
				LockFor:       5 * time.Minute,
				Backoff:       time.Second,
				NonceLifetime: 5 * time.Minute,
				Algorithms:    []string{"SHA-256", "MD5"},
			},
			Unknown:         "reject",
			UnknownLoopback: "allow",
			InviteAuth:      "users",
		},
		RTP: RTP{
			Ports:             "20000-29999",
			InactivityTimeout: 60 * time.Second,
			IO:                "poll",
			Source:            "strict",
			LearnPackets:      4,
			MaxStaleness:      200 * time.Millisecond,
			RTCP:              RTCP{Enabled: true, Interval: 5 * time.Second, Mux: "offer"},
			SRTP:              "off",
			SRTPSuites:        suiteNames(sdes.Suites),
		},
		Data:     Data{Dir: "./data"},
		Log:      Log{Level: "info", Format: "console"},
		Shutdown: Shutdown{Grace: 10 * time.Second, Mode: "drain"},
		Agents:   []Agent{{Name: "demo", Password: "demo", Queues: []string{"sales", "payments"}}},
		Queues: []Queue{
			{Name: "sales", Timeout: 2 * time.Minute, RingTimeout: 20 * time.Second, HoldPrompt: "hold", DTMF: "mask", CollectWhileTalking: true},
			{Name: "payments", Timeout: 2 * time.Minute, RingTimeout: 20 * time.Second, HoldPrompt: "hold", DTMF: "mask"},
		},
		Features: Features{SecureCode: "*7", SecureFlow: "secure-pay", PaymentCode: "*8", MonitorCode: "*55"},
		Admin:    Admin{Listen: "127.0.0.1:8080", Auth: AdminAuth{SessionIdle: 30 * time.Minute, SessionMax: 12 * time.Hour}},
		Recording: Recording{Default: "never", AgentCode: "*9",
			Routes:        map[string]string{"main": "always", "pay": "always"},
			OnUnavailable: "refuse", Recover: "repair"},
		DTMF:    DTMF{Mode: "auto"},
		Archive: DefaultArchive(),
		Routes: map[string]string{
			"echo": "echo",
			"tone": "tone",
			"ring": "ring",
		},
		Fraud:    defaultFraud(),
		Payments: Payments{Timeout: 5 * time.Minute, MaskTone: "flat", InterDigitTimeout: 5 * time.Second, Fraud: true, Attempts: 3},
		Limits: Limits{MaxCPU: 0.85, MaxSystemCPU: 0.9, MaxLag: 50 * time.Millisecond, MaxRecorderBacklog: 400 * time.Millisecond,
			RetryAfter: 5 * time.Second, Hold: 2 * time.Second, Interval: 500 * time.Millisecond, TripSamples: 1,
			PaceAt: 0, PaceCalls: 10},
		Metrics: Metrics{Enabled: true},
		Monitor: Monitor{MaxPerCall: 3, RingTimeout: 20 * time.Second},
		Cluster: DefaultCluster(),
	}
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the field path of a bad value and why it is bad.
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Load reads a YAML file over the defaults: fields the file leaves out keep
// their default. Unknown fields are refused.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// Parse reads YAML over the defaults. A file that does not decode is
// refused with every problem, one a line, each naming its field path
// ("rtp.portz: unknown field; did you mean ports?", "sip.max_calls:
// \"many\" is not a number"), or a *SyntaxError with line:column.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	// The tree first: a syntax error gets its line:column, and a field
	// that is unknown, given twice or of the wrong kind gets its path.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, syntaxError(data, err)
	}
	if errs := checkTree(&doc); len(errs) > 0 {
		return Config{}, decodeErr(errs)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return cfg, nil
}

// Validate checks every field and returns all problems, each naming its
// field path (for example "sip.listen: ...").
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &FieldError{Path: path, Reason: fmt.Sprintf(format, a...)})
	}
	if _, err := c.SIPListen(); err != nil {
		bad("sip.listen", "%v", err)
	}
	if p := c.Payments.Timeout; p < 10*time.Second || p > time.Hour {
		bad("payments.timeout", "%v is not between 10s and 1h", p)
	}
	if p := c.Payments.InterDigitTimeout; p < time.Second || p > time.Minute {
		bad("payments.inter_digit_timeout", "%v is not between 1s and 1m", p)
	}
	if p := c.Payments.Attempts; p < 1 || p > 10 {
		bad("payments.attempts", "%d is not between 1 and 10", p)
	}
	if p := c.Payments.MaskTone; p != "flat" && p != "silence" {
		bad("payments.mask_tone", "%q is not flat or silence", p)
	}
	if c.SIP.Advertise != "" {
		if _, err := netip.ParseAddr(c.SIP.Advertise); err != nil {
			bad("sip.advertise", "not an IP address: %q", c.SIP.Advertise)
		}
	}
	if len(c.SIP.Transports) == 0 {
		bad("sip.transports", "at least one of udp, tcp, tls")
	}
	for i, t := range c.SIP.Transports {
		if t != "udp" && t != "tcp" && t != "tls" {
			bad(fmt.Sprintf("sip.transports[%d]", i), "unknown transport %q (want udp, tcp or tls)", t)
		}
	}
	errs = append(errs, c.validateTLS()...)
	for i, a := range c.SIP.Allow {
		if _, err := parsePrefix(a); err != nil {
			bad(fmt.Sprintf("sip.allow[%d]", i), "not a CIDR or IP address: %q", a)
		}
	}
	if c.SIP.MaxCalls < 0 {
		bad("sip.max_calls", "must not be negative")
	}
	if c.SIP.T1 < MinT1 || c.SIP.T1 > MaxT1 {
		bad("sip.t1", "%v is outside %v-%v", c.SIP.T1, MinT1, MaxT1)
	}
	if a := c.SIP.Auth; a.MaxFailures < 1 {
		bad("sip.auth.max_failures", "must be at least 1")
	}
	if a := c.SIP.Auth; a.LockFor < time.Second || a.LockFor > 24*time.Hour {
		bad("sip.auth.lock_for", "%v is outside 1s-24h", a.LockFor)
	}
	if a := c.SIP.Auth; a.Backoff < 0 || a.Backoff > a.LockFor {
		bad("sip.auth.backoff", "%v is outside 0-lock_for", a.Backoff)
	}
	if a := c.SIP.Auth; a.NonceLifetime < 10*time.Second || a.NonceLifetime > time.Hour {
		bad("sip.auth.nonce_lifetime", "%v is outside 10s-1h", a.NonceLifetime)
	}
	if len(c.SIP.Auth.Algorithms) == 0 {
		bad("sip.auth.algorithms", "at least one of SHA-256, MD5")
	}
	for i, alg := range c.SIP.Auth.Algorithms {
		if alg != "SHA-256" && alg != "MD5" || slices.Index(c.SIP.Auth.Algorithms, alg) != i {
			bad(fmt.Sprintf("sip.auth.algorithms[%d]", i), "%q is not SHA-256 or MD5, or is listed twice", alg)
		}
	}
	if lo, hi, err := c.RTPPorts(); err != nil {
		bad("rtp.ports", "%v", err)
	} else if hi-lo < 1 {
		bad("rtp.ports", "range %d-%d holds no even/odd port pair", lo, hi)
	}
	if c.RTP.Address != "" {
		if _, err := netip.ParseAddr(c.RTP.Address); err != nil {
			bad("rtp.address", "not an IP address: %q", c.RTP.Address)
		}
	}
	if c.RTP.InactivityTimeout < 0 {
		bad("rtp.inactivity_timeout", "must not be negative")
	} else if c.RTP.InactivityTimeout > 0 && c.RTP.InactivityTimeout < time.Second {
		bad("rtp.inactivity_timeout", "%v is shorter than one second", c.RTP.InactivityTimeout)
	}
	switch c.RTP.IO {
	case "poll", "goroutine":
	default:
		bad("rtp.io", "%q: want poll or goroutine", c.RTP.IO)
	}
	if c.RTP.Workers < 0 || c.RTP.Workers > 256 {
		bad("rtp.workers", "%d: want 0 (automatic) to 256", c.RTP.Workers)
	}
	switch c.RTP.Source {
	case "strict", "learn", "any":
	default:
		bad("rtp.source", "%q: want strict, learn or any", c.RTP.Source)
	}
	if c.RTP.LearnPackets < 2 || c.RTP.LearnPackets > 64 {
		bad("rtp.learn_packets", "%d: want 2 to 64", c.RTP.LearnPackets)
	}
	if s := c.RTP.MaxStaleness; s < 0 || s > 0 && (s < 20*time.Millisecond || s > 10*time.Second) {
		bad("rtp.max_staleness", "%v: want 0 (off) or 20ms to 10s", s)
	}
	if c.RTP.RTCP.Interval < time.Second || c.RTP.RTCP.Interval > time.Minute {
		bad("rtp.rtcp.interval", "%v: want 1s to 1m", c.RTP.RTCP.Interval)
	}
	switch c.RTP.RTCP.Mux {
	case "offer", "require", "off":
	default:
		bad("rtp.rtcp.mux", "%q: want offer, require or off", c.RTP.RTCP.Mux)
	}
	if !slices.Contains(SRTPModes, c.RTP.SRTP) {
		bad("rtp.srtp", "unknown mode %q (want %s)", c.RTP.SRTP, strings.Join(SRTPModes, ", "))
	}
	for r, m := range c.RTP.SRTPRoutes {
		if !slices.Contains(SRTPModes, m) {
			bad("rtp.srtp_routes."+r, "unknown mode %q (want %s)", m, strings.Join(SRTPModes, ", "))
		}
	}
	if _, err := sdes.ParseOrder(c.RTP.SRTPSuites); err != nil {
		bad("rtp.srtp_suites", "%v (want some of %s, each once)", err, strings.Join(suiteNames(sdes.Suites), ", "))
	}
	if c.Data.Dir == "" {
		bad("data.dir", "must not be empty")
	}
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil || c.Log.Level == "" {
		bad("log.level", "unknown level %q (want trace, debug, info, warn, error)", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "unknown format %q (want json or console)", c.Log.Format)
	}
	if c.Shutdown.Grace < 0 {
		bad("shutdown.grace", "must not be negative")
	}
	if c.Shutdown.Mode != "drain" && c.Shutdown.Mode != "hangup" {
		bad("shutdown.mode", "unknown mode %q (want drain or hangup)", c.Shutdown.Mode)
	}
	c.validateLimits(bad)
	if c.Monitor.MaxPerCall < 1 || c.Monitor.MaxPerCall > 10 {
		bad("monitor.max_per_call", "%d is out of range (1 to 10)", c.Monitor.MaxPerCall)
	}
	if c.Monitor.RingTimeout < 0 {
		bad("monitor.ring_timeout", "must not be negative")
	}
	c.validateFraud(bad)
	c.validateTrunks(bad)
	for name, u := range c.Flows.Endpoints {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("flows.endpoints."+name, "not an http(s) URL: %q", u)
		}
	}
	queues := map[string]bool{}
	for i, q := range c.Queues {
		p := fmt.Sprintf("queues[%d]", i)
		switch {
		case q.Name == "":
			bad(p+".name", "must not be empty")
		case queues[q.Name]:
			bad(p+".name", "queue %q defined twice", q.Name)
		}
		queues[q.Name] = true
		if q.Timeout < 0 || q.RingTimeout < 0 {
			bad(p, "timeouts must not be negative")
		}
		if q.DTMF != "" && q.DTMF != "pass" && q.DTMF != "mask" {
			bad(p+".dtmf", "unknown policy %q (want pass or mask)", q.DTMF)
		}
		for j, sup := range q.Supervisors {
			if sup == "" || strings.ContainsAny(sup, " \t\r\n<>\"") {
				bad(fmt.Sprintf("%s.supervisors[%d]", p, j), "not a user name: %q", sup)
			}
		}
		if q.CollectWhileTalking && q.DTMF != "mask" {
			bad(p+".collect_while_talking", "needs dtmf: mask (the agent must not hear digits collected while talking)")
		}
	}
	agents := map[string]bool{}
	for i, a := range c.Agents {
		p := fmt.Sprintf("agents[%d]", i)
		switch {
		case a.Name == "":
			bad(p+".name", "must not be empty")
		case agents[a.Name]:
			bad(p+".name", "agent %q defined twice", a.Name)
		}
		agents[a.Name] = true
		if a.URI != "" && !strings.HasPrefix(a.URI, "sip:") && !strings.HasPrefix(a.URI, "sips:") {
			bad(p+".uri", "not a SIP URI: %q", a.URI)
		}
		if a.URI == "" && a.Password == "" {
			bad(p, "agent %q needs a uri or a password to register with", a.Name)
		}
		if a.Password == a.Name {
			if ap, err := c.SIPListen(); err == nil && !ap.Addr().IsLoopback() {
				bad(p+".password", "agent %q has its name as password (the demo default): set a real one before listening beyond loopback", a.Name)
			}
		}
		for j, q := range a.Queues {
			if !queues[q] {
				bad(fmt.Sprintf("%s.queues[%d]", p, j), "unknown queue %q", q)
			}
		}
		if a.SRTP != "" && !slices.Contains(SRTPModes, a.SRTP) {
			bad(p+".srtp", "unknown mode %q (want %s, or empty for rtp.srtp)", a.SRTP, strings.Join(SRTPModes, ", "))
		}
	}
	if (c.Features.SecureCode == "") != (c.Features.SecureFlow == "") {
		bad("features", "secure_code and secure_flow go together")
	}
	for _, ch := range c.Features.SecureCode {
		if !strings.ContainsRune("0123456789*#", ch) {
			bad("features.secure_code", "%q is not a DTMF key", ch)
		}
	}
	if !slices.Contains(DTMFModes, c.DTMF.Mode) {
		bad("dtmf.mode", "unknown mode %q (want %s)", c.DTMF.Mode, strings.Join(DTMFModes, ", "))
	}
	for r, m := range c.DTMF.Routes {
		if !slices.Contains(DTMFModes, m) {
			bad("dtmf.routes."+r, "unknown mode %q (want %s)", m, strings.Join(DTMFModes, ", "))
		}
	}
	policies := map[string]bool{"always": true, "consent": true, "on_demand": true, "never": true}
	if !policies[c.Recording.Default] {
		bad("recording.default", "unknown policy %q (want always, consent, on_demand or never)", c.Recording.Default)
	}
	for r, p := range c.Recording.Routes {
		if !policies[p] {
			bad("recording.routes."+r, "unknown policy %q (want always, consent, on_demand or never)", p)
		}
	}
	for _, ch := range c.Recording.AgentCode {
		if !strings.ContainsRune("0123456789*#", ch) {
			bad("recording.agent_code", "%q is not a DTMF key", ch)
		}
	}
	if c.Recording.AgentCode != "" && c.Recording.AgentCode == c.Features.SecureCode {
		bad("recording.agent_code", "same as features.secure_code")
	}
	for _, ch := range c.Features.MonitorCode {
		if !strings.ContainsRune("0123456789*#", ch) {
			bad("features.monitor_code", "%q is not a DTMF key", ch)
		}
	}
	for _, ch := range c.Features.PaymentCode {
		if !strings.ContainsRune("0123456789*#", ch) {
			bad("features.payment_code", "%q is not a DTMF key", ch)
		}
	}
	// Codes are matched as the end of the agent's last keys: one that
	// ends another would fire with it.
	for name, other := range map[string]string{"features.secure_code": c.Features.SecureCode, "recording.agent_code": c.Recording.AgentCode} {
		if pc := c.Features.PaymentCode; pc != "" && other != "" && (strings.HasSuffix(pc, other) || strings.HasSuffix(other, pc)) {
			bad("features.payment_code", "%q and %s %q end alike: one would fire the other", pc, name, other)
		}
	}
	if _, _, err := ParseMinFree(c.Recording.MinFree); err != nil {
		bad("recording.min_free", "%v", err)
	}
	if c.Recording.OnUnavailable != "refuse" && c.Recording.OnUnavailable != "continue" {
		bad("recording.on_unavailable", "want refuse or continue, got %q", c.Recording.OnUnavailable)
	}
	if c.Recording.Recover != "repair" && c.Recording.Recover != "quarantine" {
		bad("recording.recover", "want repair or quarantine, got %q", c.Recording.Recover)
	}
	if c.Capture.HEP != "" {
		if _, err := netip.ParseAddrPort(c.Capture.HEP); err != nil {
			bad("capture.hep", "want IP:PORT, got %q", c.Capture.HEP)
		}
	}
	if c.Admin.Listen != "" {
		if ap, err := netip.ParseAddrPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "want IP:PORT, got %q", c.Admin.Listen)
		} else if !ap.Addr().IsLoopback() && c.Admin.TLS.CertFile == "" && !c.Admin.AllowPlain {
			bad("admin.listen", "%s is beyond loopback without admin.tls: set admin.tls.cert_file and key_file, or admin.allow_plain: true", c.Admin.Listen)
		} else if !ap.Addr().IsLoopback() && c.Admin.Auth.Demo {
			bad("admin.auth.demo", "demo passwords with admin.listen %s beyond loopback: set demo: false", c.Admin.Listen)
		}
	}
	if c.Admin.Auth.SessionIdle < time.Minute {
		bad("admin.auth.session_idle", "want at least 1m, got %s", c.Admin.Auth.SessionIdle)
	}
	if c.Admin.Auth.SessionMax < c.Admin.Auth.SessionIdle {
		bad("admin.auth.session_max", "want at least session_idle (%s), got %s", c.Admin.Auth.SessionIdle, c.Admin.Auth.SessionMax)
	}
	users := map[string]bool{}
	for i, a := range c.Agents {
		if a.User == "" {
			continue
		}
		if users[a.User] {
			bad(fmt.Sprintf("agents[%d].user", i), "user %q linked to two agents", a.User)
		}
		users[a.User] = true
	}
	c.Archive.validate(bad)
	c.validateCluster(bad)
	for user, target := range c.Routes {
		if user == "" {
			bad("routes", "empty user part")
		}
		if err := validTarget(target); err != nil {
			bad("routes."+user, "%v", err)
		}
	}
	return errors.Join(errs...)
}

func validTarget(t string) error {
	switch {
	case t == "echo", t == "tone", t == "ring":
		return nil
	case strings.HasPrefix(t, "flow:") && len(t) > len("flow:"):
		return nil
	case strings.HasPrefix(t, "prompt:") && len(t) > len("prompt:"):
		return nil
	case strings.HasPrefix(t, "dial:sip:") && len(t) > len("dial:sip:"):
		return nil
	case strings.HasPrefix(t, "dial:sips:") && len(t) > len("dial:sips:"):
		return nil
	case strings.HasPrefix(t, "dial:tel:") && len(t) > len("dial:tel:"):
		return nil // through a trunk chosen by prefix (trunks[].prefixes)
	}
	return fmt.Errorf("unknown target %q (want echo, tone, ring, prompt:NAME, flow:NAME, dial:SIP-URI or dial:tel:NUMBER)", t)
}

// SIPListen parses sip.listen.
func (c *Config) SIPListen() (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.SIP.Listen)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want IP:PORT, got %q", c.SIP.Listen)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0 in %q", c.SIP.Listen)
	}
	return ap, nil
}

// AllowNets parses sip.allow.
func (c *Config) AllowNets() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range c.SIP.Allow {
		if p, err := parsePrefix(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// RTPPorts parses rtp.ports.
func (c *Config) RTPPorts() (lo, hi int, err error) {
	return ParsePortRange(c.RTP.Ports)
}

// ParsePortRange parses "LO-HI".
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want LO-HI, got %q", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("want LO-HI, got %q", s)
	case lo < 1024 || hi > 65535:
		return 0, 0, fmt.Errorf("range %d-%d must lie within 1024-65535", lo, hi)
	case lo > hi:
		return 0, 0, fmt.Errorf("range %d-%d is empty", lo, hi)
	}
	return lo, hi, nil
}

// RTPBindAddr is the IP RTP sockets bind to: rtp.address, else the SIP
// listen address. A wildcard (0.0.0.0 or ::) binds every interface; it
// is never narrowed to loopback, and never to sip.advertise, which may be
// a NAT's public address that no interface of this host holds.
func (c *Config) RTPBindAddr() netip.Addr {
	if a, err := netip.ParseAddr(c.RTP.Address); err == nil {
		return a
	}
	if ap, err := c.SIPListen(); err == nil {
		return ap.Addr()
	}
	return netip.IPv4Unspecified()
}

// RTPAdvertiseAddr is the IP SDP's c= line advertises (RFC 4566 §5.7):
// rtp.address unless it is a wildcard, else sip.advertise, else the SIP
// listen address. A wildcard result (listen on 0.0.0.0 or :: with neither
// set) means "per call": each call advertises the address of this host's
// interface on the route to the peer that sent the INVITE (what the
// kernel would send from), as Asterisk does for a wildcard bind, so a
// multi-homed host gives each network an address it can reach.
func (c *Config) RTPAdvertiseAddr() netip.Addr {
	if a, err := netip.ParseAddr(c.RTP.Address); err == nil && !a.IsUnspecified() {
		return a
	}
	if a := c.SIPAdvertiseAddr(); a.IsValid() {
		return a
	}
	return c.RTPBindAddr()
}

// SIPAdvertiseAddr is sip.advertise (the address SIP puts in Contact and
// Via), or the zero Addr when it is not set: the SIP server then uses its
// listen address. rtp.address never changes it.
func (c *Config) SIPAdvertiseAddr() netip.Addr {
	if a, err := netip.ParseAddr(c.SIP.Advertise); err == nil {
		return a
	}
	return netip.Addr{}
}

// validateLimits checks limits.*. The bounds keep a typo from disabling
// admission control silently or refusing every call forever: a limit is
// off only when it is 0.
func (c *Config) validateLimits(bad func(path, format string, a ...any)) {
	l := c.Limits
	if l.MaxSystemCPU < 0 || l.MaxSystemCPU > 1 {
		bad("limits.max_system_cpu", "want a share of the cores cloak may run on from 0 (off) to 1, got %g", l.MaxSystemCPU)
	}
	if l.MaxCPU < 0 || l.MaxCPU > 1 {
		bad("limits.max_cpu", "want a share of the cores from 0 (off) to 1, got %g", l.MaxCPU)
	}
	if l.MaxLag < 0 {
		bad("limits.max_lag", "must not be negative (0 turns it off)")
	}
	if l.MaxRecorderBacklog < 0 {
		bad("limits.max_recorder_backlog", "must not be negative (0 turns it off)")
	}
	if l.RetryAfter < time.Second || l.RetryAfter > time.Hour {
		bad("limits.retry_after", "want 1s to 1h, got %v", l.RetryAfter)
	}
	if l.Hold < l.Interval || l.Hold > 10*time.Minute {
		bad("limits.hold", "want limits.interval (%v) to 10m, got %v", l.Interval, l.Hold)
	}
	if l.TripSamples < 1 || l.TripSamples > 20 {
		bad("limits.trip_samples", "want 1 to 20, got %d", l.TripSamples)
	}
	if l.Interval < 50*time.Millisecond || l.Interval > 10*time.Second {
		bad("limits.interval", "want 50ms to 10s, got %v", l.Interval)
	}
	if l.PaceAt != 0 && (l.PaceAt < 0.5 || l.PaceAt >= 1) {
		bad("limits.pace_at", "want a share of each limit from 0.5 to below 1, or 0 (off), got %g", l.PaceAt)
	}
	if l.PaceCalls < 1 || l.PaceCalls > 10000 {
		bad("limits.pace_calls", "want 1 to 10000 new calls per limits.interval, got %d", l.PaceCalls)
	}
}
