package ivr

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSecureTarget(t *testing.T) {
	for _, ok := range []string{"https://pay.example/charge", "http://127.0.0.1:8181/pay", "http://[::1]:9/pay", "http://localhost/pay", "HTTPS://pay.example"} {
		if err := SecureTarget(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://pay.example/charge", "http://10.0.0.5/pay", "http://127.0.0.1.evil.example/", "ftp://127.0.0.1/", "http://0.0.0.0/", "pay.example"} {
		if err := SecureTarget(bad); !errors.Is(err, ErrPlainSecret) {
			t.Errorf("%s: err = %v, want ErrPlainSecret", bad, err)
		}
	}
}

// TestSecretStepURLMustBeHTTPS: loading a flow whose payment step POSTs
// to plain http beyond loopback fails, naming the step; a step that sends
// no secret may use http.
func TestSecretStepURLMustBeHTTPS(t *testing.T) {
	src := strings.Replace(gatewayFlow, "URL", "http://pay.example/charge", 1)
	f, err := Parse("pay.yaml", []byte(src))
	if err == nil {
		_, err = NewFlowSet(f)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `step "charge"`) || !strings.Contains(err.Error(), "https") {
		t.Fatalf("err = %v, want a problem naming step charge and https", err)
	}
	plain := `
name: lookup
steps:
  - name: ask
    data_action: {url: "http://crm.example/lookup", constants: {a: b}, on_success: done, on_failure: done}
  - name: done
    disconnect: {reason: done}
`
	mustSet(t, plain)
}

// TestCheckEndpointsNamesTheStep: the endpoints map of a deployment is
// checked against the steps that send secrets through them.
func TestCheckEndpointsNamesTheStep(t *testing.T) {
	src := `
name: pay
kind: ivr-only
steps:
  - name: card
    collect: {into: card, min: 13, max: 19, validate: luhn, on_valid: lookup, on_invalid: done, on_timeout: done}
  - name: lookup
    data_action: {endpoint: crm, constants: {a: b}, on_success: charge, on_failure: done}
  - name: charge
    data_action: {endpoint: payment_gateway, payment_gateway: true, send: {pan: card}, on_success: done, on_failure: done}
  - name: done
    disconnect: {reason: done}
`
	fs := mustSet(t, src)
	err := fs.CheckEndpoints(map[string]string{"payment_gateway": "http://10.1.2.3/pay", "crm": "http://crm.example/"})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Step != "charge" || !errors.Is(err, err) {
		t.Fatalf("err = %v, want one problem on step charge", err)
	}
	if !strings.Contains(err.Error(), `endpoint "payment_gateway"`) {
		t.Errorf("problem does not name the endpoint: %v", err)
	}
	for _, ok := range []string{"https://pay.example/charge", "http://127.0.0.1:8181/pay"} {
		if err := fs.CheckEndpoints(map[string]string{"payment_gateway": ok, "crm": "http://crm.example/"}); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// TestSecretOverVerifiedTLS: the card goes to an https gateway whose
// certificate the client trusts; a gateway the client cannot verify gets
// nothing (on_failure); a redirect is not followed, so the card reaches
// only the URL configured; an http endpoint beyond loopback met at run
// time (a flow built in code, no start check) is refused before any
// connection.
func TestSecretOverVerifiedTLS(t *testing.T) {
	var got atomic.Int32
	gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), visa) {
			got.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"approved"}`)
	}))
	defer gw.Close()
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{"result":"approved"}`)
	}))
	defer other.Close()
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	run := func(url string, client *http.Client) Result {
		t.Helper()
		r := &Runner{Flows: gatewaySet(t, url), Client: client}
		call := newFakeCall(visa + "#")
		res, err := r.Run(context.Background(), call, "gw")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(gw.URL, gw.Client()); res.Target != "done" || got.Load() != 1 {
		t.Fatalf("trusted https gateway: %+v, card received %d times", res, got.Load())
	}
	// failed, or timeout on a loaded machine: never done, never the card.
	if res := run(gw.URL, &http.Client{}); res.Target == "done" || got.Load() != 1 {
		t.Fatalf("unverifiable certificate: %+v, card received %d times", res, got.Load())
	}
	// redirector.Client() trusts the httptest CA, shared by all three.
	if res := run(redirector.URL, redirector.Client()); res.Target != "failed" || elsewhere.Load() != 0 {
		t.Fatalf("redirect: %+v, redirect target reached %d times", res, elsewhere.Load())
	}

	// Built in code: no load check; the run refuses.
	f := mustParse(t, "gw.yaml", strings.Replace(gatewayFlow, "URL", gw.URL, 1))
	for i := range f.Steps {
		if d, ok := f.Steps[i].Action.(*DataAction); ok {
			d.URL = "http://192.0.2.1:9/pay"
		}
	}
	fs := &FlowSet{flows: map[string]*Flow{"gw": f}, names: []string{"gw"}}
	call := newFakeCall(visa + "#")
	res, err := (&Runner{Flows: fs}).Run(context.Background(), call, "gw")
	if err != nil || res.Target != "failed" {
		t.Fatalf("plain http at run time: %+v %v", res, err)
	}
}
