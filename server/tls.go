package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloak-voip/cloak/certs"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// certPollInterval is how often the certificate files are checked for a
// change (a renewal by certbot or a secret mount).
const certPollInterval = 2 * time.Second

// namedCert is a reloadable key pair and the config field it comes from,
// for the log.
type namedCert struct {
	field string
	r     *certs.Reloader
}

// sipTLS builds the server and client TLS configurations of SIP over TLS
// from sip.tls. The server presents the reloadable pair; with
// client_ca_file it requires a client certificate those CAs signed
// (mutual TLS for trunks), and trusts them, beside the system roots, for
// the peers it dials, to which it presents the same pair.
func sipTLS(cfg config.Config) (server, client *tls.Config, rl *certs.Reloader, err error) {
	t := cfg.SIP.TLS
	minV, err := certs.ParseMinVersion(t.MinVersion)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sip.tls.min_version: %w", err)
	}
	rl, err = certs.New(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sip.tls: %w", err)
	}
	server = &tls.Config{MinVersion: minV, GetCertificate: rl.GetCertificate}
	client = &tls.Config{MinVersion: minV, GetClientCertificate: rl.GetClientCertificate}
	if t.ClientCAFile != "" {
		pool, err := certs.LoadPool(t.ClientCAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sip.tls.client_ca_file: %w", err)
		}
		server.ClientCAs = pool
		server.ClientAuth = tls.RequireAndVerifyClientCert
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		data, _ := os.ReadFile(t.ClientCAFile) // read above
		roots.AppendCertsFromPEM(data)
		client.RootCAs = roots
	}
	return server, client, rl, nil
}

// adminTLS builds the API's HTTPS configuration from admin.tls, or nil
// when it is not set.
func adminTLS(cfg config.Config) (*tls.Config, *certs.Reloader, error) {
	t := cfg.Admin.TLS
	if t.CertFile == "" {
		return nil, nil, nil
	}
	rl, err := certs.New(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("admin.tls: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.GetCertificate}, rl, nil
}

// reloadCerts reloads every pair on SIGHUP and whenever its files change,
// until ctx ends. A pair that fails to load leaves the previous one in
// use, and says so.
func reloadCerts(ctx context.Context, log zerolog.Logger, pairs []namedCert) {
	if len(pairs) == 0 {
		return
	}
	report := func(field, why string, changed bool, err error) {
		if err != nil {
			log.Error().Str("field", field).Str("trigger", why).Err(err).Msg("certificate reload failed: the previous certificate stays in use")
			return
		}
		log.Info().Str("field", field).Str("trigger", why).Bool("changed", changed).Msg("certificate reloaded: new TLS connections get it, those up keep theirs")
	}
	for _, p := range pairs {
		go p.r.Watch(ctx, certPollInterval, func(changed bool, err error) { report(p.field, "file change", changed, err) })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			for _, p := range pairs {
				changed, err := p.r.Reload()
				report(p.field, "SIGHUP", changed, err)
			}
		}
	}()
}

// sipBindField is the configuration field a SIP listen error belongs to.
func sipBindField(err error, cfg config.Config) (field, addr string) {
	var le *sip.ListenError
	if errors.As(err, &le) && le.Transport == "tls" {
		return "sip.tls.listen", cfg.SIP.TLS.Listen
	}
	listen, _ := cfg.SIPListen()
	return "sip.listen", listen.String()
}

// flowsHTTPClient is the client of data_action requests: the system roots
// or flows.tls.ca_file, and the client certificate when set. Certificates
// are always verified.
func flowsHTTPClient(t config.FlowsTLS) (*http.Client, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pool, err := certs.LoadPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("flows.tls.ca_file: %w", err)
		}
		conf.RootCAs = pool
	}
	if t.ClientCertFile != "" {
		pair, err := certs.LoadPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("flows.tls: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}
