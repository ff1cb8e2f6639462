package main

import (
	"fmt"

	"github.com/cloak-voip/cloak/sdes"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP for -srtp (RFC 3711 with SDES keys, RFC 4568): each stream has a
// context for what it sends (our key) and one for what it receives (the
// peer's), as a softphone does. Protecting and unprotecting reuse the
// stream's buffers and header structs, so the load generator's own cost
// per packet stays small beside the relay's.

// srtpTagLen is the longest authentication tag of the suites
// (AEAD_AES_128_GCM's 16 bytes, RFC 7714 §14.2): what protecting may add
// to a packet.
const srtpTagLen = 16

// srtpState is one stream's SRTP. tx and txHdr are the pacer's; rx and
// rxHdr the group reader's.
type srtpState struct {
	tx, rx       *srtp.Context
	txHdr, rxHdr rtp.Header
	out          [pktLen + srtpTagLen]byte
}

// setSRTP gives s its contexts: tx protects what it sends, rx
// unprotects what it receives (either may be nil for that direction in
// clear). Called before the stream is added to its group.
func (s *stream) setSRTP(tx, rx *sdes.Key) error {
	st := &srtpState{}
	var err error
	if st.tx, err = srtpContext(tx, false); err != nil {
		return fmt.Errorf("srtp send context: %w", err)
	}
	if st.rx, err = srtpContext(rx, true); err != nil {
		return fmt.Errorf("srtp receive context: %w", err)
	}
	s.srtp = st
	return nil
}

// srtpReplayWindow is the receive side's replay window (RFC 3711 §3.3.2:
// at least 64), as cloak's.
const srtpReplayWindow = 64

// srtpContext is a context for the suite of k (nil k: nil context); a
// receiving one refuses replays, as a softphone's does.
func srtpContext(k *sdes.Key, receive bool) (*srtp.Context, error) {
	if k == nil {
		return nil, nil
	}
	var prof srtp.ProtectionProfile
	switch k.Suite() {
	case sdes.AESCM128HMACSHA1_80:
		prof = srtp.ProtectionProfileAes128CmHmacSha1_80
	case sdes.AESCM128HMACSHA1_32:
		prof = srtp.ProtectionProfileAes128CmHmacSha1_32
	case sdes.AEADAES128GCM:
		prof = srtp.ProtectionProfileAeadAes128Gcm
	default:
		return nil, fmt.Errorf("suite %v", k.Suite())
	}
	key, salt := k.Material()
	var opts []srtp.ContextOption
	if receive {
		opts = append(opts, srtp.SRTPReplayProtection(srtpReplayWindow))
	}
	return srtp.CreateContext(key, salt, prof, opts...)
}

// protect returns p protected into the stream's buffer, or p itself when
// the stream sends in clear. Pacer only.
func (s *stream) protect(p []byte) ([]byte, error) {
	st := s.srtp
	if st == nil || st.tx == nil {
		return p, nil
	}
	return st.tx.EncryptRTP(st.out[:0], p, &st.txHdr)
}

// unprotect authenticates and decrypts d in place and returns the plain
// packet; ok is false when it fails (a forgery, a replay, or a plain
// packet on an SRTP leg). Group reader only.
func (s *stream) unprotect(d []byte) ([]byte, bool) {
	st := s.srtp
	if st == nil || st.rx == nil {
		return d, true
	}
	out, err := st.rx.DecryptRTP(d, d, &st.rxHdr)
	return out, err == nil
}

// srtpSDP is plainSDP as RTP/SAVP with one a=crypto attribute (RFC 4568
// §9.1).
func srtpSDP(port int, sess int, c sdes.Crypto) string {
	return fmt.Sprintf("v=0\r\no=load %d 1 IN IP4 127.0.0.1\r\ns=cloak-load\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=crypto:%s\r\na=sendrecv\r\n", sess, port, c.Attr())
}
