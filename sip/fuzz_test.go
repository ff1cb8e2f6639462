package sip

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/cloak-voip/cloak/audio"
	siplib "github.com/emiago/sipgo/sip"
)

// FuzzReoffer: whatever a re-INVITE carries, reoffer answers 200 with a
// body, or refuses with 400 or 488 and leaves the media as it was (RFC
// 3264 §8: a refused offer keeps the old session). An answer mirrors the
// direction the offer asked for (§6.1).
func FuzzReoffer(f *testing.F) {
	for _, s := range [][]byte{offerLinphone, offerPCMAFirst, offerVideoFirst, offerHold2543, offerMediaLevelC, offerG729Only, offerLowercase, offerInactive, offerSendonlySession, offerSAVP, nil} {
		f.Add(s)
	}
	cur := Media{Remote: netip.MustParseAddrPort("127.0.0.1:40000"), Codec: audio.CodecPCMU(), EventPT: 101, Direction: audio.SendRecv, Ptime: 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		local := LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: 30000, SessionID: 1, Version: 1}
		media, body, code := reoffer(b, &local, cur, DialogSRTP{Mode: SRTPOptional, Keys: true})
		switch code {
		case 200:
			if len(body) == 0 {
				t.Fatal("200 without an SDP body")
			}
			if len(b) > 0 {
				if !bytes.Contains(body, []byte("a="+media.Direction.String()+"\r\n")) {
					t.Fatalf("answer does not state the agreed direction %s:\n%s", media.Direction, body)
				}
			}
		case 400, 488:
			if media != cur {
				t.Fatalf("refused (%d) offer changed the media: %+v", code, media)
			}
		default:
			t.Fatalf("status %d", code)
		}
		if local.Version != 2 {
			t.Fatalf("o= version %d after one offer, want 2", local.Version)
		}
	})
}

// FuzzMalformedReply: the stateless reply to a message sipgo could not
// parse is either nothing or a response sipgo itself parses, 400 or 505,
// without a body; it copies only Via, From, To, Call-ID and CSeq, so
// nothing of the request's body can be in it.
func FuzzMalformedReply(f *testing.F) {
	f.Add([]byte("INFO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 99999999999 INFO\r\nContent-Length: 9\r\n\r\nSignal=5\r\n"))
	f.Add([]byte("OPTIONS sip:a@b SIP/7.0\r\nv: SIP/2.0/TCP h\r\ni: x\r\n\r\n"))
	f.Add([]byte("ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n"))
	f.Add([]byte("garbage\n\n"))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\n To: folded\nTo: <sip:a@b>;tag=9\n\nbody"))
	parser := siplib.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		reply, info := malformedReply(data, "cloak")
		if reply == nil {
			if info.status != 0 {
				t.Fatalf("status %d without a reply", info.status)
			}
			return
		}
		msg, err := parser.ParseSIP(reply)
		if err != nil {
			// Copied headers are only as well-formed as the request's;
			// what matters is that the reply is one message, with no body
			// and nothing past its end.
			if !bytes.HasSuffix(reply, []byte("Content-Length: 0\r\n\r\n")) || bytes.Count(reply, []byte("\r\n\r\n")) != 1 {
				t.Fatalf("reply is not one header block: %q", reply)
			}
		} else {
			res, ok := msg.(*siplib.Response)
			if !ok {
				t.Fatalf("reply parses as a request: %q", reply)
			}
			if res.StatusCode != info.status || (res.StatusCode != 400 && res.StatusCode != 505) {
				t.Fatalf("status %d (info %d)", res.StatusCode, info.status)
			}
			if len(res.Body()) != 0 {
				t.Fatalf("reply has a body: %q", res.Body())
			}
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(reply), "\r\n\r\n"), "\r\n")[1:] {
			name, _, _ := strings.Cut(line, ":")
			switch name {
			case "Via", "From", "To", "Call-ID", "CSeq", "Server", "Content-Length":
			default:
				t.Fatalf("reply carries %q", line)
			}
		}
	})
}

// FuzzMaskDigits: what the log boundary keeps never holds six digits in
// a row, and masking keeps the length.
func FuzzMaskDigits(f *testing.F) {
	for _, s := range []string{"4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "127.0.0.1:5060", "a 12345 b 123456", "1 2 3 4 5 6", "--1-2-3-4-5-6-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := maskDigits(s)
		if len(out) != len(s) {
			t.Fatalf("length %d -> %d", len(s), len(out))
		}
		run := 0
		for i := 0; i < len(out); i++ {
			c := out[i]
			switch {
			case c >= '0' && c <= '9':
				run++
			case (c == ' ' || c == '-') && run > 0 && i+1 < len(out) && out[i+1] >= '0' && out[i+1] <= '9':
			default:
				run = 0
			}
			if run >= minDigitRun {
				t.Fatalf("%q kept a run of %d digits: %q", s, run, out)
			}
		}
	})
}
