package sip

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
)

// TestRegisterPath: a REGISTER that came through proxies carries their
// Path entries (RFC 3327); the registrar hands them to OnBinding in order,
// returns them in the 200 to a UA that supports path (§5.3), and refuses
// a REGISTER whose Path is not a list of loose-routing SIP URIs with 400,
// storing nothing.
func TestRegisterPath(t *testing.T) {
	var mu sync.Mutex
	var paths [][]string
	reg := &Registrar{
		Password: func(u string) (string, bool) { return "s3cret", u == "alice" },
		OnBinding: func(_, _ string, p []string, _ time.Duration) {
			mu.Lock()
			paths = append(paths, p)
			mu.Unlock()
		},
	}
	addr, cli, ctx := startRegistrar(t, reg)
	register := func(supported bool, path ...string) *siplib.Response {
		t.Helper()
		req := siplib.NewRequest(siplib.REGISTER, siplib.Uri{Host: addr.Addr().String(), Port: int(addr.Port())})
		req.AppendHeader(&siplib.ToHeader{Address: siplib.Uri{User: "alice", Host: "127.0.0.1"}})
		req.AppendHeader(&siplib.ContactHeader{Address: siplib.Uri{User: "alice", Host: "127.0.0.1", Port: 5099}})
		req.AppendHeader(siplib.NewHeader("Expires", "300"))
		for _, p := range path {
			req.AppendHeader(siplib.NewHeader("Path", p))
		}
		if supported {
			req.AppendHeader(siplib.NewHeader("Supported", "outbound, path"))
		}
		res, err := cli.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == 401 {
			if res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "alice", Password: "s3cret"}); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	edge, core := "<sip:192.0.2.1:5060;lr;received=sip:198.51.100.7:40000>", "<sip:10.0.0.2;lr>"
	res := register(true, edge+", "+core)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER with Path: %d", res.StatusCode)
	}
	var echoed []string
	for _, h := range res.GetHeaders("Path") {
		echoed = append(echoed, h.Value())
	}
	if strings.Join(echoed, "|") != edge+"|"+core {
		t.Fatalf("200 Path %q, want both entries in order", echoed)
	}
	if res = register(false, edge); res.StatusCode != 200 || res.GetHeader("Path") != nil {
		t.Fatalf("REGISTER without Supported: path: %d, Path in the 200: %v", res.StatusCode, res.GetHeader("Path"))
	}
	if res = register(false); res.StatusCode != 200 {
		t.Fatalf("REGISTER without Path: %d", res.StatusCode)
	}
	for _, bad := range [][]string{
		{"<sip:10.0.0.2>"},         // a strict router
		{"<tel:+441234567890;lr>"}, // not SIP
		{"sip:10.0.0.2;lr"},        // not in <>
		{"<sip:a;lr>, <sip:b;lr>, <sip:c;lr>, <sip:d;lr>, <sip:e;lr>"}, // too many
	} {
		if res = register(false, bad...); res.StatusCode != 400 {
			t.Errorf("Path %q: %d, want 400", bad, res.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 3 || len(paths[0]) != 2 || paths[0][0] != edge || paths[0][1] != core ||
		len(paths[1]) != 1 || paths[2] != nil {
		t.Fatalf("bindings' paths %q, want [edge core] [edge] []", paths)
	}
}
