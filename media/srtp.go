package media

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cloak-voip/cloak/sdes"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP (RFC 3711) on a leg, keyed by SDES (RFC 4568) in package sip.
//
// Each leg has its own keys: the peer's master key unprotects what it
// sends us, ours protects what we send it. The bridge therefore decrypts
// on one leg and encrypts again on the other, and one leg may be plain
// (an agent on a trusted LAN) while the other is encrypted (the trunk).
//
// Receiving: the reader authenticates and decrypts a datagram in place,
// in its own read buffer, right after the source filter and before
// anything else looks at the payload or the source is latched: the
// payload type check, the Monitor (DTMF decoder, in-band detector,
// masker, recorder, media capture), the receive figures and the Handler
// (bridge, agent, IVR) all see the plain packet, as on a plain leg. A
// datagram that fails authentication, is a replay (pion's replay window,
// 64 packets, RFC 3711 §3.3.2), is too short, or arrives before the
// peer's key is known is counted in Stats.DroppedSRTP and goes no
// further; it never latches a source. RTCP that is not valid SRTCP is
// dropped the same way and counted in Quality.DroppedSRTCP. Voice that a
// shedding poll worker found stale in its socket queue is dropped before
// authentication (shedBeforeAuth).
//
// Sending: sendLocked encrypts after everything else, into the leg's
// SRTP send buffer (srtpDir.out), never into the packet it was given:
// the Monitor sees the plain packet, and a packet forwarded from another
// leg stays plain for anyone else it is forwarded to.
//
// RTCP becomes SRTCP (RFC 3711 §3.4) both ways with the same keys.
//
// Key handling: SetSRTP keeps its own copies of the master keys (to tell
// a re-INVITE that keeps them from one that changes them) and pion keeps
// the session keys it derives (the AES key schedule, the HMAC state and
// the session salts, in unexported fields of its Context). At Close, and
// when a re-INVITE replaces a key, cloak overwrites its copies with zeros
// and drops the contexts; pion's derived keys cannot be zeroed from
// outside and stay in memory until the garbage collector reuses it.

// srtpReplayWindow is the replay window of every context, in packets: pion's
// (and libsrtp's) usual 64.
const srtpReplayWindow = 64

// srtpMaxTag is the most SRTP adds to a packet: a 16-byte GCM tag.
const srtpMaxTag = 16

// ErrSRTP means SRTP could not be set up on a leg: no key, a suite
// mismatch, or pion refused the key.
var ErrSRTP = errors.New("media: srtp setup failed")

// srtpDir is one direction's SRTP: a master key (our copy), the SRTP
// context and the SRTCP one. Receive: rtp is used by the leg's reader
// only; send: rtp and out under the endpoint's txMu. rtcp is used under
// rtcpMu (the RTP reader and the RTCP reader may receive RTCP at once;
// reports leave from the clock and from Close).
type srtpDir struct {
	key    *sdes.Key
	rtp    *srtp.Context
	rtcpMu sync.Mutex
	rtcp   *srtp.Context
	out    []byte     // send only: the encrypted packet, cap sendBufSize+srtpMaxTag
	hdr    rtp.Header // send only: the header pion parses of each packet
}

// srtpState is a leg's SRTP, replaced whole by SetSRTP. rx nil means
// SRTP is on but the peer's key is not known yet (we offered, its answer
// has not come): every datagram is dropped until it is.
type srtpState struct {
	suite sdes.Suite
	rx    *srtpDir
	tx    *srtpDir
}

func newSRTPDir(k *sdes.Key, send bool) (*srtpDir, error) {
	var prof srtp.ProtectionProfile
	switch k.Suite() {
	case sdes.AESCM128HMACSHA1_80:
		prof = srtp.ProtectionProfileAes128CmHmacSha1_80
	case sdes.AESCM128HMACSHA1_32:
		prof = srtp.ProtectionProfileAes128CmHmacSha1_32
	case sdes.AEADAES128GCM:
		prof = srtp.ProtectionProfileAeadAes128Gcm
	default:
		return nil, fmt.Errorf("suite %v: %w", k.Suite(), ErrSRTP)
	}
	key, salt := k.Material()
	if len(key) != k.Suite().KeyLen() || len(salt) != k.Suite().SaltLen() {
		return nil, fmt.Errorf("key of %d+%d bytes for %v: %w", len(key), len(salt), k.Suite(), ErrSRTP)
	}
	opts := []srtp.ContextOption{srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow)}
	d := &srtpDir{key: k.Clone()}
	var err error
	// pion's errors may not quote key bytes, but are not passed on.
	if d.rtp, err = srtp.CreateContext(key, salt, prof, opts...); err != nil {
		d.key.Zero()
		return nil, fmt.Errorf("srtp context for %v: %w", k.Suite(), ErrSRTP)
	}
	if d.rtcp, err = srtp.CreateContext(key, salt, prof, opts...); err != nil {
		d.key.Zero()
		return nil, fmt.Errorf("srtcp context for %v: %w", k.Suite(), ErrSRTP)
	}
	if send {
		d.out = make([]byte, 0, sendBufSize+srtpMaxTag)
	}
	return d, nil
}

// zero overwrites our copy of the master key and drops the contexts.
func (d *srtpDir) zero() {
	if d == nil {
		return
	}
	d.key.Zero()
	d.rtcpMu.Lock()
	d.rtcp = nil
	d.rtcpMu.Unlock()
	clear(d.out[:cap(d.out)])
}

// SetSRTP turns SRTP on for the leg (RFC 3711): send is our master key,
// which protects our stream (RTP and RTCP), recv the peer's, which
// unprotects its. recv may be nil while the peer's key is not known (an
// offer of ours awaiting its answer): every datagram received is then
// dropped (Stats.DroppedSRTP) until SetSRTP is called with one. Both nil
// turns SRTP off (a re-INVITE to plain RTP, where policy allows it).
//
// A key equal to the one in use keeps its context (its rollover counter
// and replay window): a re-INVITE repeating the keys (RFC 4568 §7.1.4)
// changes nothing. A replaced key is zeroed. The endpoint keeps copies of
// the keys: the caller zeroes its own when it is done with them.
//
// Locks: the transmit mutex (briefly), to switch the send side.
func (e *Endpoint) SetSRTP(send, recv *sdes.Key) error {
	if send.IsZero() && recv.IsZero() {
		e.txMu.Lock()
		old := e.srtp.Swap(nil)
		e.txSRTP = false
		e.txMu.Unlock()
		if old != nil {
			old.rx.zero()
			old.tx.zero()
		}
		return nil
	}
	if send.IsZero() {
		return fmt.Errorf("no key of ours: %w", ErrSRTP)
	}
	if !recv.IsZero() && recv.Suite() != send.Suite() {
		return fmt.Errorf("suites %v and %v differ: %w", send.Suite(), recv.Suite(), ErrSRTP)
	}
	e.confMu.Lock() // serialises SetSRTP with itself
	defer e.confMu.Unlock()
	old := e.srtp.Load()
	st := &srtpState{suite: send.Suite()}
	var err error
	if old != nil && old.tx != nil && old.tx.key.Equal(send) {
		st.tx = old.tx
	} else if st.tx, err = newSRTPDir(send, true); err != nil {
		return err
	}
	switch {
	case recv.IsZero():
	case old != nil && old.rx != nil && old.rx.key.Equal(recv):
		st.rx = old.rx
	default:
		if st.rx, err = newSRTPDir(recv, false); err != nil {
			if old == nil || st.tx != old.tx {
				st.tx.zero()
			}
			return err
		}
	}
	e.txMu.Lock()
	e.srtp.Store(st)
	e.txSRTP = true
	e.txMu.Unlock()
	if old != nil {
		if old.tx != st.tx {
			old.tx.zero()
		}
		if old.rx != st.rx {
			// The reader may be inside the old context right now; it
			// only reads the contexts, which stay valid. Our key copy
			// is what is zeroed.
			old.rx.zero()
		}
	}
	return nil
}

// SRTP reports whether SRTP is on for the leg, and its suite.
func (e *Endpoint) SRTP() (sdes.Suite, bool) {
	if st := e.srtp.Load(); st != nil {
		return st.suite, true
	}
	return sdes.SuiteNone, false
}

// clearSRTP zeroes the leg's keys; Close calls it once nothing reads or
// sends any more.
func (e *Endpoint) clearSRTP() {
	if st := e.srtp.Swap(nil); st != nil {
		st.rx.zero()
		st.tx.zero()
	}
}

// shedBeforeAuth reports whether an SRTP datagram is dropped as stale
// before it is authenticated: a shedding poll worker measured its wait in
// the socket's queue (p.sojourn, from the kernel: no field of the packet)
// beyond half the leg's bound (shedAge), and its payload type is the leg's audio codec.
// Otherwise the shed would come after unprotectRTP, so that a relay short
// of CPU paid SRTP's cost (the dearest stage, its state cold at 1,000
// legs) for every datagram it then threw away, and fell further behind.
//
// The payload type is read from the header before authentication, so a
// forged datagram may be counted stale rather than failed (DroppedSRTP);
// either way it goes no further. It changes no state: no latch, no
// sequence or jitter figures, no replay window (pion's rollover guess
// copes with the gap, RFC 3711 §3.3.1). Telephone events and comfort
// noise are never shed, as on a plain leg. Reader only.
func (e *Endpoint) shedBeforeAuth(p *Packet) bool {
	if p.sojourn <= e.shedAge() || e.maxStale <= 0 {
		return false
	}
	cs := e.conf.Load()
	if cs.codec.IsZero() || cs.codec.ClockRate == 0 || p.Header.PayloadType != cs.codec.PayloadType {
		return false
	}
	e.stats.stale.Add(1)
	p.shed = true
	return true
}

// unprotectRTP authenticates and decrypts the SRTP datagram b in place
// (RFC 3711 §3.3) and returns the plain RTP packet within b; false means
// drop it (counted). Called by the reader only; it does not allocate on
// success.
func (e *Endpoint) unprotectRTP(st *srtpState, p *Packet, b []byte) ([]byte, bool) {
	if st.rx == nil {
		e.stats.srtp.Add(1)
		return nil, false
	}
	out, err := st.rx.rtp.DecryptRTP(b, b, &p.Header)
	if err != nil {
		e.stats.srtp.Add(1)
		return nil, false
	}
	return out, true
}

// protectRTPLocked encrypts the plain RTP packet b into the send side's
// buffer (RFC 3711 §3.1) and returns it. Called with txMu held; it does
// not allocate.
func (e *Endpoint) protectRTPLocked(b []byte) ([]byte, error) {
	st := e.srtp.Load()
	if st == nil || st.tx == nil {
		return b, nil
	}
	out, err := st.tx.rtp.EncryptRTP(st.tx.out[:0], b, &st.tx.hdr)
	if err != nil {
		return nil, fmt.Errorf("protect rtp: %w", ErrSRTP)
	}
	return out, nil
}

// unprotectRTCP authenticates and decrypts an SRTCP datagram (RFC 3711
// §3.4) in place; false means drop it (counted in Quality.DroppedSRTCP:
// plain RTCP included, which some softphones send beside their SRTCP).
func (e *Endpoint) unprotectRTCP(st *srtpState, b []byte) ([]byte, bool) {
	if st.rx == nil {
		e.rtcp.srtcpDropped.Add(1)
		return nil, false
	}
	var h rtcp.Header
	st.rx.rtcpMu.Lock()
	var out []byte
	err := ErrSRTP
	if st.rx.rtcp != nil {
		out, err = st.rx.rtcp.DecryptRTCP(b, b, &h)
	}
	st.rx.rtcpMu.Unlock()
	if err != nil {
		e.rtcp.srtcpDropped.Add(1)
		return nil, false
	}
	return out, true
}

// protectRTCP returns the SRTCP form of the compound report b, or b on a
// plain leg.
func (e *Endpoint) protectRTCP(b []byte) ([]byte, error) {
	st := e.srtp.Load()
	if st == nil || st.tx == nil {
		return b, nil
	}
	var h rtcp.Header
	st.tx.rtcpMu.Lock()
	defer st.tx.rtcpMu.Unlock()
	if st.tx.rtcp == nil {
		return nil, fmt.Errorf("protect rtcp: leg closed: %w", ErrSRTP)
	}
	out, err := st.tx.rtcp.EncryptRTCP(make([]byte, 0, len(b)+srtpMaxTag+4), b, &h)
	if err != nil {
		return nil, fmt.Errorf("protect rtcp: %w", ErrSRTP)
	}
	return out, nil
}
