package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/cloak-voip/cloak/config"
	"github.com/rs/zerolog"
)

// syncBuffer is a log sink Run's goroutines may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBindErrorsNameTheField: a listener that cannot bind (SIP over TCP,
// SIP over UDP, the HTTP API, the RTP range) makes Run return at once a
// *BindError whose one line names the field and the address, and "cloak
// is ready" is never logged.
func TestBindErrorsNameTheField(t *testing.T) {
	busyTCP := func(t *testing.T) (string, func()) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l.Addr().String(), func() { l.Close() }
	}
	tests := []struct {
		name  string
		field string
		setup func(t *testing.T, cfg *config.Config) (addr string, done func())
		want  string
	}{
		{"sip tcp busy", "sip.listen", func(t *testing.T, cfg *config.Config) (string, func()) {
			addr, done := busyTCP(t)
			cfg.SIP.Listen = addr
			return addr, done
		}, "already in use (tcp)"},
		{"sip udp busy", "sip.listen", func(t *testing.T, cfg *config.Config) (string, func()) {
			u, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg.SIP.Listen, cfg.SIP.Transports = u.LocalAddr().String(), []string{"udp"}
			return cfg.SIP.Listen, func() { u.Close() }
		}, "already in use (udp)"},
		{"sip tls busy", "sip.tls.listen", func(t *testing.T, cfg *config.Config) (string, func()) {
			addr, done := busyTCP(t)
			ca := certstest.NewCA(t, "test-ca")
			is := ca.Issue(t, "", "cloak", "127.0.0.1")
			cfg.SIP.Transports = []string{"udp", "tls"}
			cfg.SIP.TLS.Listen, cfg.SIP.TLS.CertFile, cfg.SIP.TLS.KeyFile = addr, is.CertFile, is.KeyFile
			return addr, done
		}, "already in use (tcp)"},
		{"admin busy", "admin.listen", func(t *testing.T, cfg *config.Config) (string, func()) {
			addr, done := busyTCP(t)
			cfg.Admin.Listen = addr
			return addr, done
		}, "already in use (tcp)"},
		{"rtp address not here", "rtp.ports", func(t *testing.T, cfg *config.Config) (string, func()) {
			cfg.RTP.Address = "192.0.2.1" // TEST-NET-1: on no host
			return "192.0.2.1:", func() {}
		}, "is not an address of this host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			port := freeUDPPort(t)
			rtp := freeUDPPort(t) &^ 1
			cfg.SIP.Listen = fmt.Sprintf("127.0.0.1:%d", port)
			cfg.RTP.Ports = fmt.Sprintf("%d-%d", rtp, rtp+9)
			cfg.Admin.Listen = "127.0.0.1:0"
			cfg.Data.Dir = t.TempDir()
			addr, done := tc.setup(t, &cfg)
			defer done()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := Run(ctx, cfg, zerolog.New(logs), Options{Version: "test"})
			if ctx.Err() != nil {
				t.Fatal("Run served instead of failing at start")
			}
			var be *BindError
			if !errors.As(err, &be) || be.Field != tc.field || !errors.Is(err, ErrBind) {
				t.Fatalf("err %v (%T), want a *BindError for %s", err, err, tc.field)
			}
			be.Flag = "-x"
			msg := be.Error()
			if !strings.HasPrefix(msg, tc.field+" (-x): "+addr) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "listen tcp") || strings.Contains(msg, "listen udp") || (addr != "" && strings.Count(msg, addr) != 1) {
				t.Errorf("message %q: want %q, the address %s and %q, once", msg, tc.field+" (-x): ", addr, tc.want)
			}
			if strings.Contains(logs.String(), "cloak is ready") {
				t.Errorf("ready logged though a listener failed:\n%s", logs.String())
			}
		})
	}
}
