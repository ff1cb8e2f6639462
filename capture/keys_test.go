package capture

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// testKey is a made-up 30-byte SDES key-salt in base64 (RFC 4568 §6.1).
const testKey = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

func sdpWithKey() string {
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^20|1:4\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:" + testKey + ";inline:" + testKey + " FEC_KEY=inline:" + testKey + "\r\n"
}

func TestRedactSDESKeys(t *testing.T) {
	in := []byte(sdpWithKey())
	orig := append([]byte(nil), in...)
	out := RedactSDESKeys(in)
	if bytes.Contains(out, []byte(testKey)) || bytes.Contains(out, []byte(testKey[:8])) {
		t.Fatalf("key left in:\n%s", out)
	}
	if len(out) != len(in) {
		t.Fatalf("length changed %d -> %d: Content-Length would lie", len(in), len(out))
	}
	if !bytes.Equal(in, orig) {
		t.Fatal("input modified")
	}
	if !strings.Contains(string(out), "inline:"+strings.Repeat("*", len(testKey))+"|2^20|1:4\r\n") {
		t.Fatalf("lifetime/MKI not kept or placeholder wrong:\n%s", out)
	}
	plain := []byte("INVITE sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n")
	if got := RedactSDESKeys(plain); &got[0] != &plain[0] {
		t.Fatal("a message without keys was copied")
	}
	for _, edge := range []string{"inline:", "xinline", "inline:" + testKey} {
		if got := RedactSDESKeys([]byte(edge)); bytes.Contains(got, []byte(testKey)) {
			t.Errorf("%q: key left in", edge)
		}
	}
}

type recSink struct {
	packets [][]byte
	markers []string
}

func (r *recSink) WritePacket(_ time.Time, _, _ netip.AddrPort, _ Proto, p []byte) error {
	r.packets = append(r.packets, append([]byte(nil), p...))
	return nil
}
func (r *recSink) WriteMarker(_ time.Time, text string) error {
	r.markers = append(r.markers, text)
	return nil
}

func TestKeySafeSinkRedactsAndSaysSo(t *testing.T) {
	rec := &recSink{}
	s := KeySafe(rec)
	ap := netip.MustParseAddrPort("127.0.0.1:5060")
	for range 2 {
		if err := s.WritePacket(time.Now(), ap, ap, ProtoTCP, []byte(sdpWithKey())); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range rec.packets {
		if bytes.Contains(p, []byte(testKey)) {
			t.Fatalf("key reached the sink:\n%s", p)
		}
	}
	if len(rec.markers) != 1 || rec.markers[0] != KeyRedactedMarker {
		t.Fatalf("markers %q, want the key note once", rec.markers)
	}
}

func TestKeySafeInPcap(t *testing.T) {
	path := t.TempDir() + "/sip.pcap"
	w, err := NewPcapWriter(path, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort("127.0.0.1:5061")
	if err := KeySafe(w).WritePacket(time.Now(), ap, ap, ProtoTCP, []byte(sdpWithKey())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	if bytes.Contains(data, []byte(testKey)) {
		t.Fatal("key in the pcap file")
	}
	if !bytes.Contains(data, []byte(KeyRedactedMarker)) {
		t.Fatal("the pcap does not say its keys are placeholders")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
