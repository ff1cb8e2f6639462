package server

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/sdes"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// TestSRTPPolicyFromConfig: rtp.srtp is the policy of unlisted routes
// and of the legs cloak places, rtp.srtp_routes overrides it per called
// user part; keys over plain SIP are warned about, and so is SRTP
// without SIP over TLS; a bad mode names its field.
func TestSRTPPolicyFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.RTP.SRTP = "optional"
	cfg.RTP.SRTPRoutes = map[string]string{"trunk": "mandatory", "lab": "off"}
	var logs bytes.Buffer
	out, in, err := srtpPolicy(cfg, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if out.Mode != sip.SRTPOptional || in("trunk").Mode != sip.SRTPMandatory || in("lab").Mode != sip.SRTPOff || in("echo").Mode != sip.SRTPOptional {
		t.Fatalf("policies: out %v, trunk %v, lab %v, echo %v", out.Mode, in("trunk").Mode, in("lab").Mode, in("echo").Mode)
	}
	if !strings.Contains(logs.String(), "SIP over TLS is not configured") {
		t.Errorf("no warning that SRTP is on without SIP over TLS: %s", logs.String())
	}
	if strings.Contains(logs.String(), "srtp_over_plain_sip") {
		t.Errorf("warned about keys over plain SIP while it is off: %s", logs.String())
	}

	logs.Reset()
	cfg.RTP.SRTPOverPlainSIP = true
	if _, in, err = srtpPolicy(cfg, zerolog.New(&logs)); err != nil || !in("trunk").OverPlainSIP {
		t.Fatalf("srtp_over_plain_sip not carried: %v", err)
	}
	if !strings.Contains(logs.String(), "srtp_over_plain_sip") || !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("keys over plain SIP not warned about: %s", logs.String())
	}

	logs.Reset()
	off := config.Default()
	off.RTP.SRTPOverPlainSIP = true // on, but no route uses SRTP: nothing to warn about
	if _, _, err := srtpPolicy(off, zerolog.New(&logs)); err != nil || logs.Len() != 0 {
		t.Errorf("SRTP off warned: %v %s", err, logs.String())
	}

	// rtp.srtp_suites reaches every route's policy, in its order.
	cfg.RTP.SRTPSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"}
	out, in, err = srtpPolicy(cfg, zerolog.Nop())
	want := []sdes.Suite{sdes.AESCM128HMACSHA1_80, sdes.AEADAES128GCM}
	if err != nil || !slices.Equal(out.Suites.Suites(), want) || !slices.Equal(in("trunk").Suites.Suites(), want) || !slices.Equal(in("echo").Suites.Suites(), want) {
		t.Fatalf("suites: out %v, trunk %v, echo %v (%v)", out.Suites.Suites(), in("trunk").Suites.Suites(), in("echo").Suites.Suites(), err)
	}
	cfg.RTP.SRTPSuites = []string{"NULL_HMAC_SHA1_80"}
	if _, _, err := srtpPolicy(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "rtp.srtp_suites") {
		t.Fatalf("bad suite: %v", err)
	}
	cfg.RTP.SRTPSuites = config.Default().RTP.SRTPSuites

	cfg.RTP.SRTPRoutes = map[string]string{"trunk": "always"}
	if _, _, err := srtpPolicy(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "rtp.srtp_routes.trunk") {
		t.Fatalf("bad route mode: %v", err)
	}
}
