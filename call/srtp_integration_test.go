package call_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/sdes"
	csip "github.com/cloak-voip/cloak/sip"
	siplib "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// srtpOffer is an RTP/SAVP offer with one a=crypto of ours.
func srtpOffer(port int, c sdes.Crypto) []byte {
	b := offerSDP(port, "0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15",
		"a=crypto:"+c.Attr(), "a=sendrecv")
	return bytes.Replace(b, []byte("RTP/AVP"), []byte("RTP/SAVP"), 1)
}

// TestSRTPEchoCall: an RTP/SAVP call to echo under rtp.srtp: mandatory
// is answered with SRTP; our SRTP reaches cloak, comes back protected
// with cloak's key (never in clear on the wire), and decrypts to what we
// sent. The keys are in no log line.
func TestSRTPEchoCall(t *testing.T) {
	h := newHarness(t, opts{rtcp: true, srtp: csip.SRTPPolicy{Mode: csip.SRTPMandatory, OverPlainSIP: true}})
	got := srtpRound(t, h, "echo")
	if got < 18 {
		t.Fatalf("%d of 20 packets echoed", got)
	}
}

// TestSRTPRelayReencrypts: a dial: relay with SRTP on both legs. Our
// SRTP call to the relay is answered with the relay's key; the relay's
// own leg to the far cloak (an echo) offers RTP/SAVP with its keys (the
// far cloak, mandatory, would refuse anything else); our audio is
// decrypted on one leg, re-encrypted on the other, echoed, and comes
// back to us under the relay's key.
func TestSRTPRelayReencrypts(t *testing.T) {
	pol := csip.SRTPPolicy{Mode: csip.SRTPMandatory, OverPlainSIP: true}
	far := newHarness(t, opts{srtp: pol})
	h := newHarness(t, opts{srtp: pol, routes: map[string]string{"relay": "dial:sip:echo@" + far.addr.String()},
		prompts: os.DirFS("../testdata/prompts")})
	if got := srtpRound(t, h, "relay"); got < 10 {
		t.Fatalf("%d of 20 packets came back through the SRTP relay", got)
	}
	if !strings.Contains(far.logs.String(), "call answered") {
		t.Fatal("the far cloak answered no call")
	}
}

// srtpRound calls user with an RTP/SAVP offer, sends 20 packets of
// audio protected with our key and returns how many audio packets came
// back (unprotected with cloak's key; its filler left out). It fails
// the test if a packet comes back that cloak's key does not unprotect,
// if our audio appears in clear on the wire, or if a key reaches the log.
func srtpRound(t *testing.T, h *harness, user string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sock := rtpSocket(t)
	ours, _ := sdes.NewKey(sdes.AESCM128HMACSHA1_80)
	offer := []sdes.Crypto{{Tag: 1, Key: ours}}
	d, err := h.invite(ctx, user, srtpOffer(sock.LocalAddr().(*net.UDPAddr).Port, offer[0]))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	defer d.Bye(context.Background())
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := csip.ParseAnswerSRTP(d.InviteResponse.Body(), offer)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if m.SRTP == nil || m.SRTP.Remote.Equal(ours) {
		t.Fatal("answer without a key of cloak's own")
	}
	key, salt := ours.Material()
	enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	ck, cs := m.SRTP.Remote.Material()
	dec, err := srtp.CreateContext(ck, cs, srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	go func() {
		for i := range n {
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(1000 + i), Timestamp: uint32(160 * i), SSRC: 0x5157, Marker: i == 0},
				Payload: payloadFor(i)}
			b, _ := p.Marshal()
			out, err := enc.EncryptRTP(nil, b, nil)
			if err != nil {
				return
			}
			_, _ = sock.WriteToUDPAddrPort(out, m.Remote)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	buf := make([]byte, 1500)
	var back []rtp.Packet
	clear := 0
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		_ = sock.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		k, err := sock.Read(buf)
		if err != nil {
			break
		}
		raw := append([]byte(nil), buf[:k]...)
		if raw[1] >= 192 && raw[1] <= 223 {
			continue // SRTCP
		}
		for i := range n {
			if bytes.Contains(raw, payloadFor(i)[:32]) {
				clear++
			}
		}
		plain, err := dec.DecryptRTP(nil, raw, nil)
		if err != nil {
			t.Fatalf("cannot unprotect cloak's packet: %v", err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		back = append(back, p)
	}
	if clear != 0 {
		t.Fatalf("%d packets carried our audio in clear", clear)
	}
	b64 := strings.TrimPrefix(offer[0].Attr(), "1 AES_CM_128_HMAC_SHA1_80 inline:")
	if strings.Contains(h.logs.String(), b64[:16]) {
		t.Fatal("a key reached the log")
	}
	return len(withoutFiller(back))
}

// TestSRTPMandatoryRefusesPlain: under rtp.srtp: mandatory a plain
// RTP/AVP offer gets 488; under optional it is answered in clear, and an
// RTP/SAVP offer over plain SIP without srtp_over_plain_sip gets 488.
func TestSRTPMandatoryRefusesPlain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := newHarness(t, opts{srtp: csip.SRTPPolicy{Mode: csip.SRTPMandatory, OverPlainSIP: true}})
	if _, err := h.invite(ctx, "echo", pcmuOffer(40000)); statusOf(err) != 488 {
		t.Fatalf("plain offer under mandatory: %v", err)
	}
	h2 := newHarness(t, opts{srtp: csip.SRTPPolicy{Mode: csip.SRTPOptional}})
	d, err := h2.invite(ctx, "echo", pcmuOffer(40002))
	if err != nil {
		t.Fatalf("plain offer under optional: %v", err)
	}
	_ = d.Ack(ctx)
	if strings.Contains(string(d.InviteResponse.Body()), "crypto") {
		t.Fatal("plain answer carries a=crypto")
	}
	_ = d.Bye(ctx)
	k, _ := sdes.NewKey(sdes.AESCM128HMACSHA1_80)
	if _, err := h2.invite(ctx, "echo", srtpOffer(40004, sdes.Crypto{Tag: 1, Key: k})); statusOf(err) != 488 {
		t.Fatalf("SAVP offer over UDP without srtp_over_plain_sip: %v", err)
	}
}

// TestSRTPLateOffer: an INVITE without SDP under rtp.srtp: mandatory
// gets our RTP/SAVP offer with a key per suite, AEAD_AES_128_GCM first
// (rtp.srtp_suites' default); the ACK's answer picks tag 1 (GCM) with the
// caller's key, and SRTP flows both ways with the key of the chosen tag.
func TestSRTPLateOffer(t *testing.T) {
	h := newHarness(t, opts{srtp: csip.SRTPPolicy{Mode: csip.SRTPMandatory, OverPlainSIP: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.invite(ctx, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Bye(context.Background())
	// Read cloak's offer as an answerer would.
	peer, err := csip.ParseOfferSRTP(d.InviteResponse.Body(), csip.DialogSRTP{Mode: csip.SRTPMandatory, Keys: true}, nil)
	if err != nil {
		t.Fatalf("cloak's late offer: %v", err)
	}
	if strings.Count(string(d.InviteResponse.Body()), "a=crypto:") != 3 || peer.Media.SRTP.Tag != 1 || peer.Media.SRTP.Suite() != sdes.AEADAES128GCM {
		t.Fatalf("cloak's late offer: %d a=crypto, chosen tag %d %v", strings.Count(string(d.InviteResponse.Body()), "a=crypto:"), peer.Media.SRTP.Tag, peer.Media.SRTP.Suite())
	}
	sock := rtpSocket(t)
	body, err := peer.Answer(csip.LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: sock.LocalAddr().(*net.UDPAddr).Port, SessionID: 9, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	ack := siplib.NewRequest(siplib.ACK, d.InviteResponse.Contact().Address)
	ack.SetBody(body)
	ack.AppendHeader(siplib.NewHeader("Content-Type", "application/sdp"))
	if err := d.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
	// peer.Media.SRTP: Local is our key (we send with it), Remote cloak's.
	mk := func(k *sdes.Key) *srtp.Context {
		key, salt := k.Material()
		c, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	enc, dec := mk(peer.Media.SRTP.Local), mk(peer.Media.SRTP.Remote)
	time.Sleep(100 * time.Millisecond) // the ACK's answer applied
	for i := range 20 {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 7}, Payload: payloadFor(i)}
		b, _ := p.Marshal()
		out, _ := enc.EncryptRTP(nil, b, nil)
		_, _ = sock.WriteToUDPAddrPort(out, peer.Media.Remote)
		time.Sleep(2 * time.Millisecond)
	}
	buf := make([]byte, 1500)
	var back []rtp.Packet
	for range 200 {
		_ = sock.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, err := sock.Read(buf)
		if err != nil {
			break
		}
		plain, err := dec.DecryptRTP(nil, buf[:k], nil)
		if err != nil {
			t.Fatalf("cannot unprotect cloak's packet with its tag 1 key: %v", err)
		}
		var p rtp.Packet
		if p.Unmarshal(plain) == nil {
			back = append(back, p)
		}
	}
	if got := len(withoutFiller(back)); got < 15 {
		t.Fatalf("echoed %d of 20 SRTP packets after a late offer", got)
	}
}
