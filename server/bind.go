package server

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/cloak-voip/cloak/media"
)

// BindError is a listener cloak could not open at start: the SIP
// transports (sip.listen), the HTTP API (admin.listen) or the RTP port
// range (rtp.ports on rtp.address). Its text is one line naming the
// configuration field, the address and the reason, for example
// "sip.listen: 127.0.0.1:5060 already in use (tcp)". Run returns it
// before anything says cloak is ready.
type BindError struct {
	// Field is the configuration field whose address failed.
	Field string
	// Flag, when set (cmd/cloak sets it), is the command-line flag that
	// overrides Field; the text names it beside the field.
	Flag string
	// Addr is the address that could not be bound; Net the network
	// ("udp", "tcp") when known.
	Addr, Net string
	// Err is the underlying error (a syscall.Errno when the kernel said
	// why).
	Err error
}

// ErrBind is wrapped by every BindError.
var ErrBind = errors.New("cannot listen")

func (e *BindError) Error() string {
	field := e.Field
	if e.Flag != "" {
		field += " (" + e.Flag + ")"
	}
	on := ""
	if e.Net != "" {
		on = " (" + e.Net + ")"
	}
	var errno syscall.Errno
	switch {
	case errors.As(e.Err, &errno) && errno == syscall.EADDRINUSE:
		return fmt.Sprintf("%s: %s already in use%s", field, e.Addr, on)
	case errors.As(e.Err, &errno) && errno == syscall.EACCES:
		return fmt.Sprintf("%s: %s: permission denied%s; ports below 1024 need root or CAP_NET_BIND_SERVICE", field, e.Addr, on)
	case errors.As(e.Err, &errno) && errno == syscall.EADDRNOTAVAIL:
		return fmt.Sprintf("%s: %s is not an address of this host%s", field, e.Addr, on)
	case errors.As(e.Err, &errno):
		return fmt.Sprintf("%s: %s: %v%s", field, e.Addr, errno, on)
	}
	return fmt.Sprintf("%s: %s: %v", field, e.Addr, e.Err)
}

func (e *BindError) Unwrap() []error { return []error{ErrBind, e.Err} }

// bindError turns a listen error into a BindError for field; other errors
// (a timeout, a closed context) come back as they were, prefixed with the
// field.
func bindError(field, addr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return &BindError{Field: field, Addr: addr, Net: op.Net, Err: op.Err}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &BindError{Field: field, Addr: addr, Err: errno}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// probePool binds one port of the RTP range and gives it back, so a range
// no socket can be bound in (an rtp.address not on this host, every port
// taken) fails at start rather than on the first call.
func probePool(pool *media.PortPool) error {
	conn, port, err := pool.Open()
	if err != nil {
		return err
	}
	err = conn.Close()
	pool.Release(port)
	return err
}
