package sip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/audio"
	"github.com/pion/sdp/v3"
)

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimLeft(s, "\n"), "\n", "\r\n"))
}

// Offers seen from real softphones and trunks, trimmed to what matters.
var (
	offerLinphone = crlf(`
v=0
o=alice 3012 1234 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
t=0 0
m=audio 7078 RTP/AVP 96 97 98 0 8 101
a=rtpmap:96 opus/48000/2
a=rtpmap:97 speex/16000
a=rtpmap:98 speex/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
`)
	offerPCMAFirst = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 20000 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=sendrecv
`)
	offerNoEvent = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 20000 RTP/AVP 0
`)
	offerPCMAOnly = crlf(`
v=0
o=trunk 99 2 IN IP4 203.0.113.9
s=SBC
c=IN IP4 203.0.113.9
t=0 0
m=audio 40002 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
`)
	offerEvent96 = crlf(`
v=0
o=- 7 7 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
`)
	offerInactive = crlf(`
v=0
o=- 7 8 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
a=inactive
`)
	offerSendonlySession = crlf(`
v=0
o=- 7 8 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
a=sendonly
m=audio 6000 RTP/AVP 0
`)
	offerHold2543 = crlf(`
v=0
o=- 7 9 IN IP4 0.0.0.0
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 6000 RTP/AVP 0
`)
	offerVideoFirst = crlf(`
v=0
o=- 5 5 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=video 9000 RTP/AVP 96
a=rtpmap:96 H264/90000
m=audio 9002 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
m=audio 9004 RTP/AVP 0
`)
	offerMediaLevelC = crlf(`
v=0
o=- 5 5 IN IP6 ::1
s=-
t=0 0
m=audio 9002 RTP/AVP 0
c=IN IP6 ::1
`)
	offerG729Only = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 20000 RTP/AVP 18 101
a=rtpmap:18 G729/8000
a=rtpmap:101 telephone-event/8000
`)
	offerSRTPOnly = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 20000 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
`)
	offerNoConnection = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
t=0 0
m=audio 20000 RTP/AVP 0
`)
	offerLowercase = crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 20000 RTP/AVP 110 111
a=rtpmap:110 pcma/8000
a=rtpmap:111 Telephone-Event/8000
`)
)

func TestParseOffer(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		offer   []byte
		want    Media
		status  int // expected error status, 0 for success
		wantErr error
	}{
		{"linphone opus first falls to PCMU", offerLinphone, Media{Remote: ap("192.168.1.20:7078"), Codec: audio.CodecPCMU(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"caller preference PCMA over PCMU", offerPCMAFirst, Media{Remote: ap("10.0.0.5:20000"), Codec: audio.CodecPCMA(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"no telephone-event", offerNoEvent, Media{Remote: ap("10.0.0.5:20000"), Codec: audio.CodecPCMU(), Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"PCMA only trunk", offerPCMAOnly, Media{Remote: ap("203.0.113.9:40002"), Codec: audio.CodecPCMA(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"telephone-event on dynamic 96", offerEvent96, Media{Remote: ap("127.0.0.1:6000"), Codec: audio.CodecPCMU(), EventPT: 96, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"inactive", offerInactive, Media{Remote: ap("127.0.0.1:6000"), Codec: audio.CodecPCMU(), EventPT: 101, Direction: audio.Inactive, Ptime: 20}, 0, nil},
		{"session-level sendonly is answered recvonly", offerSendonlySession, Media{Remote: ap("127.0.0.1:6000"), Codec: audio.CodecPCMU(), Direction: audio.RecvOnly, Ptime: 20}, 0, nil},
		{"RFC 2543 hold with 0.0.0.0", offerHold2543, Media{Remote: ap("0.0.0.0:6000"), Codec: audio.CodecPCMU(), Direction: audio.RecvOnly, Ptime: 20}, 0, nil},
		{"video line first, first audio line taken", offerVideoFirst, Media{Remote: ap("192.0.2.1:9002"), Codec: audio.CodecPCMU(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"media-level c= over IPv6", offerMediaLevelC, Media{Remote: ap("[::1]:9002"), Codec: audio.CodecPCMU(), Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"dynamic PT with lowercase encoding names", offerLowercase, Media{Remote: ap("10.0.0.5:20000"), Codec: audio.Codec{Name: "PCMA", PayloadType: 110, ClockRate: 8000}, EventPT: 111, Direction: audio.SendRecv, Ptime: 20}, 0, nil},
		{"G.729 only is 488", offerG729Only, Media{}, 488, ErrNoCodec},
		{"SRTP only is 488 with SRTP off", offerSRTPOnly, Media{}, 488, ErrSRTPPolicy},
		{"no connection address is 400", offerNoConnection, Media{}, 400, ErrSDP},
		{"garbage is 400", []byte("this is not sdp"), Media{}, 400, ErrSDP},
		{"empty is 400", nil, Media{}, 400, ErrSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseOffer(tt.offer)
			if tt.status != 0 {
				if err == nil {
					t.Fatalf("want error with status %d, got offer %+v", tt.status, o.Media)
				}
				var sc interface{ StatusCode() int }
				if !errors.As(err, &sc) || sc.StatusCode() != tt.status {
					t.Fatalf("error %v: want status %d", err, tt.status)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v: want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOffer: %v", err)
			}
			if o.Media != tt.want {
				t.Fatalf("media\n got %+v\nwant %+v", o.Media, tt.want)
			}
		})
	}
}

func TestAnswerKeepsLinesAndAdvertisesOurPort(t *testing.T) {
	o, err := ParseOffer(offerVideoFirst)
	if err != nil {
		t.Fatal(err)
	}
	body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 42, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, body)
	}
	if n := len(sd.MediaDescriptions); n != 3 {
		t.Fatalf("answer has %d m-lines, offer had 3 (RFC 3264 §6)", n)
	}
	if p := sd.MediaDescriptions[0].MediaName.Port.Value; p != 0 {
		t.Errorf("video line port %d, want 0 (rejected)", p)
	}
	if p := sd.MediaDescriptions[2].MediaName.Port.Value; p != 0 {
		t.Errorf("second audio line port %d, want 0 (rejected)", p)
	}
	audio := sd.MediaDescriptions[1]
	if audio.MediaName.Port.Value != 30000 {
		t.Errorf("audio port %d, want 30000", audio.MediaName.Port.Value)
	}
	if got := strings.Join(audio.MediaName.Formats, " "); got != "0 101" {
		t.Errorf("audio formats %q, want %q", got, "0 101")
	}
	if sd.ConnectionInformation.Address.Address != "127.0.0.1" {
		t.Errorf("c= %s", sd.ConnectionInformation.Address.Address)
	}
	if v, _ := audio.Attribute("ptime"); v != "20" {
		t.Errorf("ptime %q", v)
	}
	if _, ok := audio.Attribute("sendrecv"); !ok {
		t.Errorf("no sendrecv in answer:\n%s", body)
	}
	// The answer must parse as an answer to what was offered.
	m, err := ParseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Remote != netip.MustParseAddrPort("127.0.0.1:30000") || m.EventPT != 101 || m.Codec.Name != "PCMU" {
		t.Errorf("answer parses to %+v", m)
	}
}

func TestAnswerDirectionMirrorsHold(t *testing.T) {
	for _, tc := range []struct {
		offer []byte
		want  string
	}{{offerInactive, "inactive"}, {offerSendonlySession, "recvonly"}, {offerHold2543, "recvonly"}} {
		o, err := ParseOffer(tc.offer)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Media.OnHold() {
			t.Errorf("%s: OnHold false", tc.want)
		}
		body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 1, Version: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "a="+tc.want+"\r\n") {
			t.Errorf("answer lacks a=%s:\n%s", tc.want, body)
		}
	}
}

func TestBuildOfferRoundTrip(t *testing.T) {
	body, err := BuildOffer(LocalSDP{Addr: netip.MustParseAddr("::1"), Port: 31000, SessionID: 9, Version: 1}, SupportedCodecs(), DefaultEventPayloadType, audio.SendRecv)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOffer(body)
	if err != nil {
		t.Fatalf("our own offer is refused: %v\n%s", err, body)
	}
	want := Media{Remote: netip.MustParseAddrPort("[::1]:31000"), Codec: audio.CodecPCMU(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}
	if o.Media != want {
		t.Fatalf("got %+v want %+v", o.Media, want)
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, s := range [][]byte{offerLinphone, offerPCMAFirst, offerVideoFirst, offerHold2543, offerMediaLevelC, offerG729Only, offerLowercase} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOffer(b)
		if err != nil {
			var sc interface{ StatusCode() int }
			if !errors.As(err, &sc) || (sc.StatusCode() != 400 && sc.StatusCode() != 488) {
				t.Fatalf("error without a 400/488 status: %v", err)
			}
			return
		}
		if _, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 1, Version: 1}); err != nil {
			t.Fatalf("accepted offer cannot be answered: %v", err)
		}
		if _, err := ParseAnswer(b); err != nil {
			t.Fatalf("accepted as offer but not as answer: %v", err)
		}
	})
}

// TestComfortNoiseAcceptedAndAnswered: an offer with comfort noise (RFC
// 3389 §5: CN/8000, static PT 13 with or without its rtpmap, or a dynamic
// one) is answered with it, so cloak's silence filler may send CN; an
// offer without CN is answered without.
func TestComfortNoiseAcceptedAndAnswered(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
	for _, tt := range []struct {
		name, mline string
		wantPT      uint8
		wantFormats string
	}{
		{"static 13 with rtpmap", "m=audio 20000 RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:13 CN/8000\r\n", 13, "0 101 13"},
		{"static 13 without rtpmap", "m=audio 20000 RTP/AVP 8 13\r\n", 13, "8 13"},
		{"dynamic CN", "m=audio 20000 RTP/AVP 0 98\r\na=rtpmap:98 cn/8000\r\n", 98, "0 98"},
		{"CN at another rate is not ours", "m=audio 20000 RTP/AVP 0 118\r\na=rtpmap:118 CN/16000\r\n", 0, "0"},
		{"no CN", "m=audio 20000 RTP/AVP 0\r\n", 0, "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(head + tt.mline))
			if err != nil {
				t.Fatal(err)
			}
			if o.Media.CNPT != tt.wantPT {
				t.Fatalf("CNPT %d, want %d", o.Media.CNPT, tt.wantPT)
			}
			body, err := o.Answer(LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000})
			if err != nil {
				t.Fatal(err)
			}
			var sd sdp.SessionDescription
			if err := sd.Unmarshal(body); err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, body)
			}
			md := sd.MediaDescriptions[0]
			if got := strings.Join(md.MediaName.Formats, " "); got != tt.wantFormats {
				t.Errorf("answer formats %q, want %q", got, tt.wantFormats)
			}
			hasCN := strings.Contains(string(body), "CN/8000")
			if hasCN != (tt.wantPT != 0) {
				t.Errorf("answer rtpmap CN/8000 present %v, want %v:\n%s", hasCN, tt.wantPT != 0, body)
			}
			m, err := ParseAnswer(body)
			if err != nil || m.CNPT != tt.wantPT {
				t.Errorf("our answer parses to CNPT %d (%v), want %d", m.CNPT, err, tt.wantPT)
			}
		})
	}
}
