package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeErrorsNameTheField: every way a file can fail to decode is
// refused with the field's path and a reason a person can act on (the
// nearest field name for a typo, what a duration or number looks like),
// never a Go type name; syntax errors say line:column.
func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // every one must be in the error
	}{
		{"unknown field, a typo", "rtp:\n  portz: 20000-20099\n",
			[]string{"rtp.portz: unknown field; did you mean ports?", "line 2:3"}},
		{"unknown field in a list item", "agents:\n  - name: a\n    passwrd: x\n",
			[]string{"agents[0].passwrd: unknown field; did you mean password?"}},
		{"unknown field, nothing close", "sip:\n  zzzzqqq: 1\n",
			[]string{"sip.zzzzqqq: unknown field; this section takes advertise, allow, auth, invite_auth, listen, max_calls, t1, tls, transports, unknown, unknown_loopback, user_agent"}},
		{"unknown top-level section", "recordings:\n  dir: x\n",
			[]string{"recordings: unknown field; did you mean recording?"}},
		{"unknown nested field", "sip:\n  auth:\n    max_failure: 3\n",
			[]string{"sip.auth.max_failure: unknown field; did you mean max_failures?"}},
		{"bad duration", "shutdown:\n  grace: tenseconds\n",
			[]string{`shutdown.grace: "tenseconds" is not a duration like 10s`, "line 2:10"}},
		{"duration without unit", "shutdown:\n  grace: 10\n",
			[]string{"shutdown.grace: 10 has no unit: write a duration like 10s"}},
		{"zero duration without unit", "sip:\n  auth:\n    backoff: 0\n",
			[]string{"sip.auth.backoff: 0 has no unit: write a duration like 0s"}},
		{"duration in a list item", "queues:\n  - name: q\n    timeout: soon\n",
			[]string{`queues[0].timeout: "soon" is not a duration like 10s`}},
		{"string for a number", "sip:\n  max_calls: many\n",
			[]string{`sip.max_calls: "many" is not a number`, "line 2:14"}},
		{"list for a number", "rtp:\n  workers: [1, 2]\n",
			[]string{"rtp.workers: a list is not a number"}},
		{"fraction for a number", "sip:\n  max_calls: 2.5\n",
			[]string{"sip.max_calls: 2.5 is not a whole number"}},
		{"negative for unsigned", "capture:\n  hep_agent_id: -1\n",
			[]string{"capture.hep_agent_id: -1 is not a whole number from 0 to 4294967295"}},
		{"not a boolean", "pci: maybe\n",
			[]string{`pci: "maybe" is not true or false`}},
		{"scalar for a list", "sip:\n  transports: udp\n",
			[]string{`sip.transports: "udp" is not a list; write [a, b]`}},
		{"list for a string", "sip:\n  listen: [a, b]\n",
			[]string{"sip.listen: a list is not a single value"}},
		{"scalar for a section", "sip: 5\n",
			[]string{"sip: 5 is not a mapping; this section takes advertise"}},
		{"list for a map", "routes: [echo]\n",
			[]string{"routes: a list is not a mapping of names to values"}},
		{"field given twice", "sip:\n  listen: 127.0.0.1:5060\n  listen: 127.0.0.1:5070\n",
			[]string{"sip.listen: given twice (lines 2 and 3)"}},
		{"every problem, not the first", "rtp:\n  portz: 1\nsip:\n  max_calls: many\n",
			[]string{"rtp.portz: unknown field", `sip.max_calls: "many" is not a number`}},
		{"syntax: mapping in a value", "sip:\n  listen: a: b\n",
			[]string{"YAML syntax error at line 2:12: mapping values are not allowed in this context"}},
		{"syntax: tab indentation", "sip:\n\tlisten: x\n",
			[]string{"YAML syntax error at line 2:1: found character that cannot start any token"}},
		{"syntax: missing colon", "sip:\n  listen 127.0.0.1\n  max_calls: 3\n",
			[]string{"YAML syntax error at line 3:12:"}},
		{"syntax: bad indentation", "sip:\n  listen: x\n listen: y\n",
			[]string{"YAML syntax error at line 3:2: did not find expected key"}},
		{"syntax: unclosed quote", "sip:\n  listen: \"abc\n",
			[]string{"YAML syntax error at line 2:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n  %s\nlacks %q", msg, w)
				}
			}
			// yaml.v3's own words name Go types and tags; none may leak.
			for _, bad := range []string{"config.", "!!", "unmarshal", "time.Duration", " int"} {
				if strings.Contains(msg, bad) {
					t.Errorf("error %q shows %q", msg, bad)
				}
			}
		})
	}
}

// TestDecodeAcceptsWhatDefaultsUse: the checks refuse nothing a valid file
// holds: zero durations with a unit, nulls (the default stays), the example file.
func TestDecodeAcceptsWhatDefaultsUse(t *testing.T) {
	c, err := Parse(strings.NewReader("sip:\n  auth:\n    backoff: 0s\nshutdown:\n  grace: 1m30s\nadmin:\n  listen:\nrtp:\n  workers: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Auth.Backoff != 0 || c.Shutdown.Grace.String() != "1m30s" || c.Admin.Listen != Default().Admin.Listen || c.RTP.Workers != 2 {
		t.Errorf("decoded %+v", c)
	}
	// Anchors and merge keys: the anchor's fields are checked where merged.
	c, err = Parse(strings.NewReader("queues:\n  - &q {name: a, timeout: 1m}\n  - <<: *q\n    name: b\n"))
	if err != nil || len(c.Queues) != 2 || c.Queues[1].Name != "b" || c.Queues[1].Timeout.String() != "1m0s" {
		t.Fatalf("merge key: %+v, %v", c.Queues, err)
	}
	if _, err := Parse(strings.NewReader("queues:\n  - &q {name: a, timeot: 1m}\n  - <<: *q\n    name: b\n")); err == nil ||
		!strings.Contains(err.Error(), "queues[0].timeot: unknown field; did you mean timeout?") {
		t.Fatalf("merge key with a typo: %v", err)
	}
	b, err := os.ReadFile(filepath.Join("..", "docs", "cloak.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(strings.NewReader(string(b))); err != nil {
		t.Fatalf("docs/cloak.example.yaml: %v", err)
	}
}

// TestLoadNamesFileThenFields: Load puts the file's name first, then the
// problems one a line, as serve prints them.
func TestLoadNamesFileThenFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cloak.yaml")
	if err := os.WriteFile(p, []byte("rtp:\n  portz: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+p+":\nrtp.portz: unknown field; did you mean ports?") {
		t.Fatalf("Load: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"portz", "ports", 1}, {"lisen", "listen", 1}, {"ab", "ba", 2}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
