package main

import (
	"net/netip"
	"testing"

	"github.com/cloak-voip/cloak/sdes"
)

// TestSRTPStreamRoundTrip: with -srtp a stream sends SRTP (the payload
// is not its stamp any more, and carries the suite's tag), a peer
// stream with the same key gets the stamp back, and a tampered packet,
// a replayed one or a plain one is refused.
func TestSRTPStreamRoundTrip(t *testing.T) {
	for _, suite := range []sdes.Suite{sdes.AESCM128HMACSHA1_80, sdes.AEADAES128GCM} {
		t.Run(suite.String(), func(t *testing.T) {
			k, err := sdes.NewKey(suite)
			if err != nil {
				t.Fatal(err)
			}
			dst := netip.MustParseAddrPort("127.0.0.1:9")
			send := newStream(1, nil, dst, 101, 10)
			recv := newStream(2, nil, dst, 101, 10)
			if err := send.setSRTP(k, nil); err != nil {
				t.Fatal(err)
			}
			if err := recv.setSRTP(nil, k); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				plain := send.next(int64(1000 + i))
				if _, _, ok := readStamp(plain[hdrLen:]); !ok {
					t.Fatal("the plain packet carries no stamp")
				}
				plainCopy := append([]byte(nil), plain...)
				wire, err := send.protect(plain)
				if err != nil {
					t.Fatal(err)
				}
				if len(wire) != len(plainCopy)+suite.TagLen() {
					t.Fatalf("protected %d bytes into %d, want +%d", len(plainCopy), len(wire), suite.TagLen())
				}
				if _, _, ok := readStamp(wire[hdrLen:]); ok {
					t.Fatal("the stamp reads in clear from the protected packet")
				}
				pkt := append([]byte(nil), wire...)
				bad := append([]byte(nil), wire...)
				bad[len(bad)-1] ^= 1
				if _, ok := recv.unprotect(bad); ok {
					t.Fatal("a tampered packet was unprotected")
				}
				got, ok := recv.unprotect(pkt)
				if !ok {
					t.Fatal("the peer could not unprotect the packet")
				}
				if sent, _, ok := readStamp(got[hdrLen:]); !ok || sent != int64(1000+i) {
					t.Fatalf("stamp after unprotect: %d %v", sent, ok)
				}
				if _, ok := recv.unprotect(append([]byte(nil), wire...)); ok {
					t.Fatal("a replayed packet was unprotected")
				}
				if _, ok := recv.unprotect(plainCopy); ok {
					t.Fatal("a plain packet was accepted on an SRTP stream")
				}
			}
		})
	}
}

// TestSRTPFlagOnlyForSIP: -srtp needs SIP to carry the keys.
func TestSRTPFlagOnlyForSIP(t *testing.T) {
	if _, err := parseFlags([]string{"-mode", "floor", "-srtp"}, nil); err == nil {
		t.Fatal("-srtp accepted with -mode floor")
	}
	o, err := parseFlags([]string{"-mode", "sip", "-srtp"}, nil)
	if err != nil || !o.srtp {
		t.Fatalf("-srtp with -mode sip: %v %v", o.srtp, err)
	}
}
