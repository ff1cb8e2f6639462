package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/certs/certstest"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/rs/zerolog"
)

// TestRunRefusesPlainGateway: a payment_gateway endpoint on plain http
// beyond loopback stops the start, naming the flow step that would send
// the card there.
func TestRunRefusesPlainGateway(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Flows.Endpoints = map[string]string{"payment_gateway": "http://192.0.2.10/pay"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, cfg, zerolog.Nop(), Options{Version: "test"})
	var ve *ivr.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "flows.endpoints") || !strings.Contains(err.Error(), `step "`) {
		t.Fatalf("err = %v, want flows.endpoints naming a step", err)
	}
}

// TestAdminOverHTTPS: with admin.tls the API answers over HTTPS with the
// configured certificate, and plain HTTP gets no API.
func TestAdminOverHTTPS(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	is := ca.Issue(t, "", "api", "127.0.0.1")
	cfg := loopbackConfig(t)
	adminPort := freeUDPPort(t)
	cfg.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", adminPort)
	cfg.Admin.TLS = config.AdminTLS{CertFile: is.CertFile, KeyFile: is.KeyFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	stop := runUntilReady(t, cfg)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	resp, err := client.Get("https://" + cfg.Admin.Listen + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS API: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "api" {
		t.Fatalf("not served with the configured certificate: %+v", resp.TLS)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + cfg.Admin.Listen + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the HTTPS API port")
		}
	}
	stop()
}
