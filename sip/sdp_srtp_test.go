package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/sdes"
	"github.com/pion/sdp/v3"
)

// keyA and keyB are 30-byte AES_CM key||salt values in base64.
const (
	keyA = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	keyB = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
)

// offerSAVP is a baresip-style RTP/SAVP offer (mediaenc=srtp-mand): its
// first a=crypto has an MKI cloak refuses, so the second is chosen.
var offerSAVP = crlf(`
v=0
o=- 7 7 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 10000 RTP/SAVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:` + keyA + `|2^20|1:4
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:` + keyB + `
a=sendrecv
`)

var offerSAVPNoUsable = crlf(`
v=0
o=- 7 7 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 10000 RTP/SAVP 0
a=crypto:1 F8_128_HMAC_SHA1_80 inline:` + keyA + `
`)

// offerAVPthenSAVP offers the same audio twice, plain first.
var offerAVPthenSAVP = crlf(`
v=0
o=- 7 7 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 10000 RTP/AVP 0
m=audio 10002 RTP/SAVP 0
a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:` + keyA + `
`)

// TestParseOfferSRTPPolicy pins every (mode × keys allowed × offer) cell:
// plain, SRTP, or 488 wrapping ErrSRTPPolicy.
func TestParseOfferSRTPPolicy(t *testing.T) {
	const plain, srtp, refused = "plain", "srtp", "488"
	offers := []struct {
		name string
		body []byte
	}{{"avp", offerPCMAFirst}, {"savp", offerSAVP}, {"savp-unusable", offerSAVPNoUsable}, {"avp+savp", offerAVPthenSAVP}}
	want := map[DialogSRTP][4]string{
		{Mode: SRTPOff, Keys: false}:       {plain, refused, refused, plain},
		{Mode: SRTPOff, Keys: true}:        {plain, refused, refused, plain},
		{Mode: SRTPOptional, Keys: false}:  {plain, refused, refused, plain},
		{Mode: SRTPOptional, Keys: true}:   {plain, srtp, refused, plain},
		{Mode: SRTPMandatory, Keys: false}: {refused, refused, refused, refused},
		{Mode: SRTPMandatory, Keys: true}:  {refused, srtp, refused, srtp},
	}
	for pol, cells := range want {
		for i, o := range offers {
			got, err := ParseOfferSRTP(o.body, pol, nil)
			outcome := plain
			switch {
			case err != nil:
				outcome = refused
				if statusOf(err, 0) != 488 {
					t.Errorf("%v/%s: status %d", pol, o.name, statusOf(err, 0))
				}
				if i != 0 && !errors.Is(err, ErrSRTPPolicy) && !errors.Is(err, ErrNoCodec) {
					t.Errorf("%v/%s: %v", pol, o.name, err)
				}
				if strings.Contains(err.Error(), keyA[:10]) || strings.Contains(err.Error(), keyB[:10]) {
					t.Errorf("%v/%s: error quotes a key", pol, o.name)
				}
			case got.Media.SRTP != nil:
				outcome = srtp
			}
			if outcome != cells[i] {
				t.Errorf("mode %v keys %v, offer %s: %s, want %s (%v)", pol.Mode, pol.Keys, o.name, outcome, cells[i], err)
			}
		}
	}
}

// TestAnswerSRTP: the answer to an RTP/SAVP offer is RTP/SAVP with one
// a=crypto: the chosen line's tag and suite (the first usable one) and a
// fresh key of ours, never the offerer's.
func TestAnswerSRTP(t *testing.T) {
	o, err := ParseOfferSRTP(offerSAVP, DialogSRTP{Mode: SRTPMandatory, Keys: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Media.SRTP
	if c.Tag != 2 || c.Suite() != sdes.AESCM128HMACSHA1_32 {
		t.Fatalf("chose tag %d suite %v, want 2 (the line without an MKI)", c.Tag, c.Suite())
	}
	remote, _ := c.Remote.Material()
	if want, _ := sdes.ParseCrypto("2 AES_CM_128_HMAC_SHA1_32 inline:" + keyB); !c.Remote.Equal(want.Key) || len(remote) != 16 {
		t.Fatal("remote key is not the offer's")
	}
	body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("192.0.2.1"), Port: 30000})
	if err != nil {
		t.Fatal(err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	md := sd.MediaDescriptions[0]
	if p := strings.Join(md.MediaName.Protos, "/"); p != "RTP/SAVP" {
		t.Fatalf("answer profile %s", p)
	}
	var cryptos []string
	for _, a := range md.Attributes {
		if a.Key == "crypto" {
			cryptos = append(cryptos, a.Value)
		}
	}
	if len(cryptos) != 1 {
		t.Fatalf("answer has %d a=crypto", len(cryptos))
	}
	ans, err := sdes.ParseCrypto(cryptos[0])
	if err != nil {
		t.Fatal(err)
	}
	if ans.Tag != 2 || ans.Key.Suite() != sdes.AESCM128HMACSHA1_32 || !ans.Key.Equal(c.Local) {
		t.Fatalf("answer's a=crypto is not tag 2 with our key")
	}
	if ans.Key.Equal(c.Remote) || strings.Contains(string(body), keyB) || strings.Contains(string(body), keyA) {
		t.Fatal("answer echoes the offerer's key")
	}
	// The SIP log and capture redaction covers our answer.
	red := capture.RedactSDESKeys(body)
	if strings.Contains(string(red), cryptos[0][len("2 AES_CM_128_HMAC_SHA1_32 inline:"):]) {
		t.Fatal("redaction leaves our key in the answer")
	}
	if got := redactKeys(string(body)); strings.Contains(got, cryptos[0][len("2 AES_CM_128_HMAC_SHA1_32 inline:"):]) {
		t.Fatal("log redaction leaves our key in the answer")
	}
}

// TestOfferAnswerSRTPRoundTrip: our RTP/SAVP offer (every suite, fresh
// keys), answered by our own answerer, gives each side the other's key.
func TestOfferAnswerSRTPRoundTrip(t *testing.T) {
	cr, err := NewOfferCrypto(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cr) != 3 || cr[0].Key.Suite() != sdes.AEADAES128GCM || cr[1].Key.Suite() != sdes.AESCM128HMACSHA1_80 {
		t.Fatalf("offer crypto %v, want GCM first, then AES-CM-80", cr)
	}
	l := LocalSDP{Addr: netip.MustParseAddr("192.0.2.1"), Port: 30000, Crypto: cr}
	offer, err := BuildOffer(l, SupportedCodecs(), DefaultEventPayloadType, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(offer), "RTP/SAVP") {
		t.Fatal("offer is not RTP/SAVP")
	}
	if red := string(capture.RedactSDESKeys(offer)); strings.Contains(red, inlineKey(cr[0])) {
		t.Fatal("redaction leaves a key of our offer")
	}
	peer, err := ParseOfferSRTP(offer, DialogSRTP{Mode: SRTPOptional, Keys: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := peer.Answer(LocalSDP{Addr: netip.MustParseAddr("192.0.2.2"), Port: 40000})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseAnswerSRTP(answer, cr)
	if err != nil {
		t.Fatal(err)
	}
	if m.SRTP == nil || m.SRTP.Tag != 1 || !m.SRTP.Local.Equal(peer.Media.SRTP.Remote) || !m.SRTP.Remote.Equal(peer.Media.SRTP.Local) {
		t.Fatal("keys do not cross")
	}
	kept := keepOffered(cr, m.SRTP)
	if len(kept) != 1 || kept[0].Key != m.SRTP.Local || !cr[1].Key.IsZero() || !cr[2].Key.IsZero() || m.SRTP.Local.IsZero() {
		t.Fatal("keepOffered kept the wrong keys")
	}
	// A plain answer to an RTP/SAVP offer, or one naming a tag we did
	// not offer, is refused.
	if _, err := ParseAnswerSRTP(offerPCMAFirst, cr); !errors.Is(err, ErrSRTPPolicy) {
		t.Fatalf("plain answer: %v", err)
	}
	if _, err := ParseAnswerSRTP(offerAVPthenSAVP[:0], cr); err == nil {
		t.Fatal("empty answer accepted")
	}
	bad := strings.Replace(string(answer), "a=crypto:1 ", "a=crypto:9 ", 1)
	if _, err := ParseAnswerSRTP([]byte(bad), cr); !errors.Is(err, ErrSRTPPolicy) {
		t.Fatalf("unknown tag: %v", err)
	}
}

// TestReofferKeepsOurKey: a re-INVITE repeating the SRTP offer is
// answered with the key already in use; an empty re-INVITE gets an
// RTP/SAVP offer with it; a plain re-offer under mandatory is refused.
func TestReofferKeepsOurKey(t *testing.T) {
	pol := DialogSRTP{Mode: SRTPMandatory, Keys: true}
	o, err := ParseOfferSRTP(offerSAVP, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	local := LocalSDP{Addr: netip.MustParseAddr("192.0.2.1"), Port: 30000, Version: 1}
	m2, body, code := reoffer(offerSAVP, &local, o.Media, pol)
	if code != 200 || m2.SRTP.Local != o.Media.SRTP.Local {
		t.Fatalf("re-offer: %d, new key of ours", code)
	}
	if !strings.Contains(string(body), "RTP/SAVP") {
		t.Fatal("re-answer is not RTP/SAVP")
	}
	_, body, code = reoffer(nil, &local, o.Media, pol)
	if code != 200 || !strings.Contains(string(body), "RTP/SAVP") || !strings.Contains(string(body), "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:") {
		t.Fatalf("empty re-INVITE: %d %s", code, capture.RedactSDESKeys(body))
	}
	if _, _, code = reoffer(offerPCMAFirst, &local, o.Media, pol); code != 488 {
		t.Fatalf("plain re-offer under mandatory: %d", code)
	}
	// retireSRTP zeroes the replaced peer key only.
	retireSRTP(o.Media.SRTP, m2.SRTP)
	if !o.Media.SRTP.Remote.IsZero() || o.Media.SRTP.Local.IsZero() {
		t.Fatal("retireSRTP zeroed the wrong keys")
	}
}

// inlineKey is the base64 key||salt of an a=crypto attribute.
func inlineKey(c sdes.Crypto) string {
	a := c.Attr()
	return a[strings.Index(a, "inline:")+len("inline:"):]
}

// savpOffer is an RTP/SAVP offer of PCMU and telephone-event with the
// given a=crypto lines, in order.
func savpOffer(crypto ...string) []byte {
	return crlf("\nv=0\no=- 7 7 IN IP4 192.0.2.4\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\nm=audio 10000 RTP/SAVP 0 101\n" +
		"a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n" + strings.Join(crypto, "\n") + "\na=sendrecv\n")
}

// TestAnswerPrefersGCM: an offer with AES-CM lines first and
// AEAD_AES_128_GCM last (a softphone's usual order) is answered with GCM,
// the first of sdes.Suites (RFC 4568 §7.1.2: the answerer chooses among
// the offered attributes); a policy's own order (rtp.srtp_suites) rules
// instead; a re-INVITE offering the same lines keeps the suite in use.
func TestAnswerPrefersGCM(t *testing.T) {
	gcm, err := sdes.NewKey(sdes.AEADAES128GCM)
	if err != nil {
		t.Fatal(err)
	}
	offer := savpOffer("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+keyA,
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"+keyB,
		"a=crypto:"+sdes.Crypto{Tag: 3, Key: gcm}.Attr())
	order := func(names ...string) sdes.Order {
		o, err := sdes.ParseOrder(names)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range []struct {
		suites sdes.Order
		tag    int
		suite  sdes.Suite
	}{
		{sdes.Order{}, 3, sdes.AEADAES128GCM},
		{order("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"), 3, sdes.AEADAES128GCM},
		{order("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"), 1, sdes.AESCM128HMACSHA1_80},
		{order("AES_CM_128_HMAC_SHA1_32"), 2, sdes.AESCM128HMACSHA1_32},
	} {
		pol := DialogSRTP{Mode: SRTPMandatory, Keys: true, Suites: c.suites}
		o, err := ParseOfferSRTP(offer, pol, nil)
		if err != nil {
			t.Fatalf("%v: %v", c.suites.Suites(), err)
		}
		got := o.Media.SRTP
		if got.Tag != c.tag || got.Suite() != c.suite || got.Local.Suite() != c.suite {
			t.Errorf("%v: answered tag %d %v, want tag %d %v", c.suites.Suites(), got.Tag, got.Suite(), c.tag, c.suite)
		}
		if c.suite == sdes.AEADAES128GCM && !got.Remote.Equal(gcm) {
			t.Error("GCM chosen with another key than the offer's")
		}
		body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("192.0.2.1"), Port: 30000})
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("a=crypto:%d %v inline:", c.tag, c.suite); !strings.Contains(string(body), want) {
			t.Errorf("%v: answer lacks %q", c.suites.Suites(), want)
		}
	}
	// Only a suite the policy does not name: refused, not answered with it.
	only := savpOffer("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" + keyB)
	if _, err := ParseOfferSRTP(only, DialogSRTP{Mode: SRTPMandatory, Keys: true, Suites: order("AEAD_AES_128_GCM")}, nil); !errors.Is(err, ErrSRTPPolicy) {
		t.Errorf("suite outside rtp.srtp_suites: %v, want 488", err)
	}
	// A re-INVITE: the session runs AES-CM-80 (chosen under another
	// order); the same offer again keeps AES-CM-80 and our key.
	pol := DialogSRTP{Mode: SRTPMandatory, Keys: true}
	first, err := ParseOfferSRTP(offer, DialogSRTP{Mode: SRTPMandatory, Keys: true, Suites: order("AES_CM_128_HMAC_SHA1_80")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseOfferSRTP(offer, pol, first.Media.SRTP)
	if err != nil {
		t.Fatal(err)
	}
	if again.Media.SRTP.Tag != 1 || again.Media.SRTP.Local != first.Media.SRTP.Local {
		t.Errorf("re-offer: tag %d %v, want the suite in use (tag 1) with our key", again.Media.SRTP.Tag, again.Media.SRTP.Suite())
	}
}

// TestNewOfferCryptoOrder: our offers list the policy's suites in its
// order, tags from 1.
func TestNewOfferCryptoOrder(t *testing.T) {
	o, err := sdes.ParseOrder([]string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := NewOfferCrypto(o.Suites())
	if err != nil {
		t.Fatal(err)
	}
	if len(cr) != 2 || cr[0].Tag != 1 || cr[0].Key.Suite() != sdes.AESCM128HMACSHA1_80 || cr[1].Tag != 2 || cr[1].Key.Suite() != sdes.AEADAES128GCM {
		t.Fatalf("offer crypto %v", cr)
	}
}

func TestParseSRTPMode(t *testing.T) {
	for _, m := range []SRTPMode{SRTPOff, SRTPOptional, SRTPMandatory} {
		if got, err := ParseSRTPMode(m.String()); err != nil || got != m {
			t.Errorf("%v: %v %v", m, got, err)
		}
	}
	if _, err := ParseSRTPMode("required"); !errors.Is(err, ErrSRTPMode) {
		t.Errorf("bad mode: %v", err)
	}
	if p := (SRTPPolicy{Mode: SRTPMandatory}).ForTransport("UDP"); p.Keys {
		t.Error("keys allowed over UDP")
	}
	if p := (SRTPPolicy{Mode: SRTPMandatory}).ForTransport("TLS"); !p.Keys {
		t.Error("keys refused over TLS")
	}
	if p := (SRTPPolicy{Mode: SRTPMandatory, OverPlainSIP: true}).ForTransport("udp"); !p.Keys {
		t.Error("srtp_over_plain_sip ignored")
	}
}

// FuzzParseOfferSRTP: under every SRTP policy an offer is refused with
// 400/488 or answered; an answer with SRTP carries exactly one a=crypto,
// our key of the chosen suite; no error quotes an inline key.
func FuzzParseOfferSRTP(f *testing.F) {
	for _, s := range [][]byte{offerSAVP, offerSAVPNoUsable, offerAVPthenSAVP, offerPCMAFirst} {
		f.Add(s)
	}
	inline := regexp.MustCompile(`(?i)inline:([A-Za-z0-9+/]{16,})`) // a key-like run
	cryptoLine := regexp.MustCompile(`(?m)^a=crypto:`)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, pol := range []DialogSRTP{{Mode: SRTPOptional, Keys: true}, {Mode: SRTPMandatory, Keys: true}, {Mode: SRTPOff}} {
			o, err := ParseOfferSRTP(b, pol, nil)
			if err != nil {
				if c := statusOf(err, 0); c != 400 && c != 488 {
					t.Fatalf("error without a 400/488 status: %v", err)
				}
				for _, m := range inline.FindAllSubmatch(b, -1) {
					if strings.Contains(err.Error(), string(m[1][:16])) {
						t.Fatalf("error quotes a key: %v", err)
					}
				}
				continue
			}
			body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 1, Version: 1})
			if err != nil {
				t.Fatalf("accepted offer cannot be answered: %v", err)
			}
			n := len(cryptoLine.FindAll(body, -1))
			switch c := o.Media.SRTP; {
			case c == nil && n != 0, c != nil && n != 1:
				t.Fatalf("answer with %d a=crypto for SRTP %v", n, c != nil)
			case c != nil && (c.Local.IsZero() || c.Local.Suite() != c.Remote.Suite()):
				t.Fatalf("answer key of suite %v for an offer of %v", c.Local.Suite(), c.Remote.Suite())
			case c != nil && pol.Mode == SRTPOff, c == nil && pol.Mode == SRTPMandatory:
				t.Fatalf("policy %v answered SRTP %v", pol.Mode, c != nil)
			}
		}
	})
}
