package sip

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	siplib "github.com/emiago/sipgo/sip"
)

// handshakeTimeout bounds a TLS handshake on the SIP listener: a peer
// that connects and says nothing is dropped after it.
const handshakeTimeout = 10 * time.Second

// handshakeListener makes each accepted TCP connection the server side of
// a TLS connection (RFC 3261 §26.2). The handshake runs on the
// connection's first read — on its own goroutine, not the accept loop —
// bounded by handshakeTimeout. conf's GetCertificate is asked on every
// handshake, so a certificate swapped by a reload reaches new
// connections while those up keep theirs.
//
// A source outside sip.allow is closed before any handshake: a handshake
// costs the server a signature (about 1.7 ms of CPU here), which a source
// that may not call must not be able to make cloak spend.
type handshakeListener struct {
	net.Listener
	conf *tls.Config
	// allow, when not nil, says whether a source address may connect;
	// refused is called for each one that may not.
	allow   func(src string) bool
	refused func()
}

// Accept implements net.Listener.
func (l *handshakeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.allow != nil && !l.allow(c.RemoteAddr().String()) {
			if l.refused != nil {
				l.refused() // before Close: whoever sees the close sees the count
			}
			_ = c.Close()
			continue
		}
		return &serverTLSConn{Conn: tls.Server(c, l.conf)}, nil
	}
}

// serverTLSConn is a *tls.Conn whose first Read completes the handshake
// within handshakeTimeout.
type serverTLSConn struct {
	*tls.Conn
	once sync.Once
	herr error
}

// Read implements net.Conn.
func (c *serverTLSConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		c.herr = c.Conn.HandshakeContext(ctx)
	})
	if c.herr != nil {
		return 0, c.herr
	}
	return c.Conn.Read(b)
}

// tlsRoutable gives a sips: URI without a transport parameter an explicit
// transport=tls. RFC 5630 §3 makes TLS implied by sips:, but sipgo
// v1.7.2's Request.Transport falls back to UDP for it, which would send
// the request — SDP included — in clear. The parameter changes nothing
// for the peer (RFC 3261 §19.1.4 compares it), and keeps our requests on TLS.
func tlsRoutable(u *siplib.Uri) {
	if !u.IsEncrypted() {
		return
	}
	if u.UriParams == nil {
		u.UriParams = siplib.NewParams()
	}
	if _, ok := u.UriParams.Get("transport"); !ok {
		u.UriParams.Add("transport", "tls")
	}
}
