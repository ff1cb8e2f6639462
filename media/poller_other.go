//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/overload"
	"github.com/rs/zerolog"
)

// ErrNoPoller means this platform has no epoll: endpoints read their
// sockets with one goroutine each.
var ErrNoPoller = errors.New("media: rtp poller needs linux (epoll)")

// Poller is only implemented on Linux; see poller_linux.go.
type Poller struct{}

// NewPoller returns ErrNoPoller on this platform.
func NewPoller(int, zerolog.Logger) (*Poller, error) { return nil, ErrNoPoller }

// Workers returns 0.
func (p *Poller) Workers() int { return 0 }

// PollerStats are a Poller's counters (see poller_linux.go).
type PollerStats struct {
	Workers                      int
	Legs                         int64
	Batches, Served, FullBatches uint64
	Busy                         time.Duration
	Nudges                       uint64
	ShedEpisodes                 uint64
}

// Stats returns zero counters.
func (p *Poller) Stats() PollerStats { return PollerStats{} }

// Close does nothing.
func (p *Poller) Close() {}

// DefaultPollWorkers returns the worker count cloak would use.
func DefaultPollWorkers() int { return overload.Cores() }

func (p *Poller) register(*Endpoint, *pollWorker) {}
func (p *Poller) unregister(*Endpoint)            {}

type pollWorker struct{}

// polledConn never exists on this platform; the type keeps Endpoint's
// code the same everywhere.
type polledConn struct {
	net.PacketConn
	poller *Poller
	fd     int
}

func openPolled(netip.AddrPort, *Poller) (*polledConn, error) { return nil, ErrNoPoller }

func (c *polledConn) sendto([]byte, netip.AddrPort) error { return ErrNoPoller }
func (c *polledConn) close() error                        { return nil }

func (c *polledConn) connectLatched(netip.AddrPort, uint64, *atomic.Uint64, *atomic.Uint64) {}
func (c *polledConn) disconnect(*atomic.Uint64)                                             {}

func sendConnected(int, []byte) error { return ErrNoPoller }

// TakeLag returns 0: read lag is sampled by the Linux poll workers only.
func (p *Poller) TakeLag() time.Duration { return 0 }
