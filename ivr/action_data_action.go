package ivr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/cloak-voip/cloak/fraud"
)

// maxResponseBytes bounds the JSON body read from a data_action endpoint.
const maxResponseBytes = 64 << 10

// ErrNoEndpoint: a data_action names an endpoint the Runner does not know.
var ErrNoEndpoint = errors.New("data_action endpoint not configured")

func init() { register("data_action", func() Action { return &DataAction{} }) }

// DataAction POSTs chosen variables as one JSON object and maps fields of the
// JSON response into variables.
type DataAction struct {
	noPrompts `yaml:"-"`
	// URL is the endpoint; or Endpoint names one configured on the Runner
	// (Runner.Endpoints) so flows stay independent of deployment.
	URL      string `yaml:"url"`
	Endpoint string `yaml:"endpoint"`
	// PaymentGateway marks the only kind of data action that may receive
	// secrets.
	PaymentGateway bool `yaml:"payment_gateway"`
	// Fraud screens the payment before it is sent (payment_gateway steps
	// only; send must name card_number): a payment held is sent with
	// "capture": false and, authorised, takes OnHold. Without a screener
	// (fraud.enabled false) the payment is sent unscreened.
	Fraud bool `yaml:"fraud"`
	// OnHold is taken when a screened payment was held and the gateway
	// authorised it (status "authorised"); required with fraud: true.
	OnHold string `yaml:"on_hold"`
	// Send maps a JSON request field to the variable that fills it.
	Send map[string]string `yaml:"send"`
	// Constants are literal JSON request fields.
	Constants map[string]string `yaml:"constants"`
	// Receive maps a JSON response field to the variable it is stored in
	// (strings, numbers and booleans; stored as text, not secret).
	Receive map[string]string `yaml:"receive"`
	// Timeout bounds the whole request (default 10s).
	Timeout Duration `yaml:"timeout"`
	// OnSuccess is taken on a 2xx response with a JSON object body.
	OnSuccess string `yaml:"on_success"`
	// OnFailure is taken on any other outcome. Required.
	OnFailure string `yaml:"on_failure"`
	// OnTimeout, when set, is taken instead of OnFailure on a timeout.
	OnTimeout string `yaml:"on_timeout"`
}

// Name implements Action.
func (*DataAction) Name() string { return "data_action" }

func (*DataAction) linear() bool { return false }
func (*DataAction) ends() bool   { return false }

func (d *DataAction) edges() []edge {
	return []edge{{"on_success", d.OnSuccess}, {"on_failure", d.OnFailure}, {"on_timeout", d.OnTimeout}, {"on_hold", d.OnHold}}
}

func (d *DataAction) declare(v *vars) {
	for _, name := range d.Receive {
		v.assign(name, false)
	}
}

func (d *DataAction) check(c *stepCheck) {
	if (d.URL == "") == (d.Endpoint == "") {
		c.errf("data_action needs exactly one of url or endpoint")
	}
	if d.URL != "" {
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.errf("data_action url %q is not an http(s) URL", d.URL)
		} else if d.carriesSecret(func(v string) bool { return c.secrets[v] }) {
			if err := SecureTarget(d.URL); err != nil {
				c.errf("url: %v", err)
			}
		}
	}
	for _, field := range sortedKeys(d.Send) {
		v := d.Send[field]
		c.uses(v, "data_action send")
		if c.secrets[v] && !d.PaymentGateway {
			c.errf("secret %q may not be sent by a data_action not marked payment_gateway", v)
		}
		if _, dup := d.Constants[field]; dup {
			c.errf("data_action field %q is in both send and constants", field)
		}
	}
	for _, field := range sortedKeys(d.Receive) {
		if d.Receive[field] == "" {
			c.errf("data_action receive field %q has no variable", field)
		}
	}
	c.duration(d.Timeout, "timeout")
	c.required(d.OnSuccess, "on_success")
	c.required(d.OnFailure, "on_failure")
	switch {
	case d.Fraud && !d.PaymentGateway:
		c.errf("fraud: true is for payment_gateway data actions only")
	case d.Fraud && d.Send["card_number"] == "":
		c.errf("fraud: true needs send.card_number (the card to screen)")
	case d.Fraud && (d.Send["capture"] != "" || d.Constants["capture"] != ""):
		c.errf("fraud: true sets the capture field itself; remove it from send and constants")
	case d.Fraud:
		c.required(d.OnHold, "on_hold")
	case d.OnHold != "":
		c.errf("on_hold is taken only with fraud: true")
	}
}

// run POSTs the step's fields as one JSON object. A step that carries a
// secret goes only to an https endpoint (certificate verified) or to
// loopback (SecureTarget), and follows no redirect. Secrets are written
// straight from their bytes into the request body (never through a Go
// string) and only when the step is marked payment_gateway; the body is
// zeroed afterwards. Any transport error, non-2xx status or body that is not
// a JSON object takes on_failure (on_timeout for a timeout when set); a
// configuration problem (unknown endpoint) also takes on_failure. Traces say
// which, never what was sent.
func (d *DataAction) run(ctx context.Context, x *exec) (outcome, error) {
	st, sc := x.st, x.sc
	fail := func(detail string, timeout bool) (outcome, error) {
		if timeout && d.OnTimeout != "" {
			x.trace("on_timeout", detail)
			return outcome{next: d.OnTimeout}, nil
		}
		x.trace("on_failure", detail)
		return outcome{next: d.OnFailure}, nil
	}
	target := d.URL
	if d.Endpoint != "" {
		u, ok := st.r.Endpoints[d.Endpoint]
		if !ok || u == "" {
			return fail(fmt.Sprintf("%v: %q", ErrNoEndpoint, d.Endpoint), false)
		}
		target = u
	}

	client := st.client
	if d.carriesSecret(func(v string) bool { _, ok := sc.secrets[v]; return ok }) {
		// Checked at load for url and (server start) for endpoints; checked
		// again here, before a byte of the secret is in a request.
		if err := SecureTarget(target); err != nil {
			return fail("refused: "+ErrPlainSecret.Error(), false)
		}
		client = secretClient(client)
	}

	var held *fraud.Decision
	var screened *fraud.Attributes
	if d.Fraud && st.r.Screener != nil {
		attrs := st.fraudAttributes(d, sc)
		screened = &attrs
		dec, err := st.r.Screener.Screen(ctx, attrs)
		if err != nil {
			// Not screened, not sent: the caller goes the failure way
			// (an agent), the error names no value (fraud.Screen's).
			return fail("fraud screening failed", false)
		}
		if dec.Hold {
			held = &dec
		}
	}

	body, err := st.requestBody(d, sc, held != nil)
	defer wipeBytes(body)
	if err != nil {
		return outcome{}, err
	}

	rctx, cancel := context.WithTimeout(ctx, durOr(d.Timeout, Duration(DefaultDataTimeout)).Std())
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fail("bad request URL", false)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil { // the call itself is over
			return outcome{}, ctx.Err()
		}
		var ne interface{ Timeout() bool }
		timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		if timeout {
			return fail("timeout", true)
		}
		return fail("transport error", false)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return fail("HTTP "+strconv.Itoa(resp.StatusCode), false)
	}
	var fields map[string]any
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil || fields == nil {
		if rctx.Err() != nil && ctx.Err() == nil {
			return fail("timeout", true)
		}
		return fail("response is not a JSON object", false)
	}
	if pr, ok := st.r.Screener.(PaymentRecorder); ok && screened != nil {
		result, _ := fields["result"].(string)
		pr.RecordPayment(ctx, *screened, st.call.ID(), result == GatewayDeclined)
	}
	for _, field := range sortedKeys(d.Receive) {
		v, ok := fields[field]
		if !ok {
			continue
		}
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = x.String()
		case bool:
			text = strconv.FormatBool(x)
		default:
			continue // null, objects and arrays are not mapped
		}
		sc.setPlain(d.Receive[field], text)
	}
	if held != nil {
		if status, _ := fields["status"].(string); status == StatusAuthorised {
			ref, _ := fields["reference"].(string)
			if err := st.r.Screener.Hold(ctx, Hold{Interaction: st.call.ID(), Decision: *held, Reference: ref}); err != nil {
				// Authorised but recorded nowhere: nobody would review it.
				return fail("held payment authorised, hold not recorded", false)
			}
			x.trace("on_hold", fmt.Sprintf("held for review: score %d of %d", held.Score, held.Minimum))
			return outcome{next: d.OnHold}, nil
		}
	}
	x.trace("on_success", "HTTP "+strconv.Itoa(resp.StatusCode))
	return outcome{next: d.OnSuccess}, nil
}

// requestBody builds the JSON object from Send and Constants, fields sorted.
// With authoriseOnly it adds "capture": false (a held payment).
func (st *run) requestBody(d *DataAction, sc *scope, authoriseOnly bool) ([]byte, error) {
	names := make([]string, 0, len(d.Send)+len(d.Constants))
	for k := range d.Send {
		names = append(names, k)
	}
	for k := range d.Constants {
		if _, dup := d.Send[k]; !dup {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	// Size the buffer for the worst case (every byte escaped as \u00XX) so
	// append never reallocates and leaves a copy of a secret behind.
	size := 2
	for _, name := range names {
		vlen := len(d.Constants[name])
		if v, ok := d.Send[name]; ok {
			vlen = len(sc.plain[v])
			if sec, isSecret := sc.secrets[v]; isSecret {
				vlen = sec.length()
			}
		}
		size += 6*len(name) + 6*vlen + 6
	}
	size += len(`,"capture":false`)
	body := make([]byte, 0, size)
	body = append(body, '{')
	for i, name := range names {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendJSONString(body, []byte(name))
		body = append(body, ':')
		if v, ok := d.Send[name]; ok {
			if sec, isSecret := sc.secrets[v]; isSecret {
				if !d.PaymentGateway {
					return body, fmt.Errorf("send %q: %w (data_action not marked payment_gateway)", v, ErrSecretSink)
				}
				sec.reveal(func(clear []byte) { body = appendJSONString(body, clear) })
				continue
			}
			pv, ok := sc.plain[v]
			if !ok {
				return body, fmt.Errorf("send %q: %w", v, ErrUnsetVariable)
			}
			body = appendJSONString(body, []byte(pv))
			continue
		}
		body = appendJSONString(body, []byte(d.Constants[name]))
	}
	if authoriseOnly {
		if len(names) > 0 {
			body = append(body, ',')
		}
		body = append(body, `"capture":false`...)
	}
	body = append(body, '}')
	return body, nil
}

// appendJSONString appends s as a JSON string (RFC 8259 section 7),
// escaping quotes, backslashes and control characters; other bytes pass
// through (flows and keys are UTF-8).
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
