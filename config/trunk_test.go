package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseValidate(t *testing.T, y string) error {
	t.Helper()
	c, err := Parse(strings.NewReader(y))
	if err != nil {
		return err
	}
	return c.Validate()
}

// TestTrunkValidateNamesPath: every bad trunk field is refused with its
// path.
func TestTrunkValidateNamesPath(t *testing.T) {
	ok := `trunks:
- name: good
  host: 192.0.2.1
  transport: udp
  numbers: {country: GB}
`
	if err := parseValidate(t, ok); err != nil {
		t.Fatalf("good trunk refused: %v", err)
	}
	for _, tc := range []struct{ yaml, path string }{
		{"- {name: 'bad name', host: 192.0.2.1, transport: udp, numbers: {country: GB}}", "trunks[1].name"},
		{"- {name: good, host: 192.0.2.2, transport: udp, numbers: {country: GB}}", "trunks[1].name"},
		{"- {name: t2, host: 'a b', transport: udp, numbers: {country: GB}}", "trunks[1].host"},
		{"- {name: t2, transport: udp, numbers: {country: GB}}", "trunks[1].host"},
		{"- {name: t2, match: [10.0.0.0/33], transport: udp, numbers: {country: GB}}", "trunks[1].match[0]"},
		{"- {name: t2, host: 192.0.2.1, transport: sctp, numbers: {country: GB}}", "trunks[1].transport"},
		{"- {name: t2, host: 192.0.2.1, transport: tls, numbers: {country: GB}}", "trunks[1].transport"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: XX}}", "trunks[1].numbers.country"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB, national_prefix: x}}", "trunks[1].numbers.national_prefix"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, prefixes: ['44']}", "trunks[1].prefixes[0]"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, codecs: [G729]}", "trunks[1].codecs[0]"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, dtmf: tones}", "trunks[1].dtmf"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, max_calls: -1}", "trunks[1].max_calls"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, options_interval: 10ms}", "trunks[1].options_interval"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, register: {enabled: true}}", "trunks[1].auth.user"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, register: {enabled: true}, auth: {user: u}}", "trunks[1].auth.password"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, auth: {user: u, password: a, password_env: B}}", "trunks[1].auth"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, inbound_auth: true, auth: {user: u, password_env: CLOAK_TEST_UNSET_VAR}}", "trunks[1].auth.password"},
		{"- {name: t2, host: 192.0.2.1, transport: udp, numbers: {country: GB}, register: {expires: 1s}}", "trunks[1].register.expires"},
	} {
		err := parseValidate(t, ok+tc.yaml+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%s: got %v, want an error naming %s", tc.yaml, err, tc.path)
		}
	}
	for _, y := range []string{"sip: {unknown: maybe}", "sip: {unknown_loopback: deny}"} {
		if err := parseValidate(t, y); err == nil || !strings.Contains(err.Error(), "sip.unknown") {
			t.Errorf("%s: got %v", y, err)
		}
	}
	for _, tc := range []struct{ yaml, path string }{
		{"sip: {invite_auth: all}", "sip.invite_auth:"},
		{"sip: {invite_auth: \"\"}", "sip.invite_auth:"},
		{"features: {monitor_code: \"*5x\"}", "features.monitor_code:"},
	} {
		if err := parseValidate(t, tc.yaml); err == nil || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: got %v, want an error naming %s", tc.yaml, err, tc.path)
		}
	}
	for _, y := range []string{"sip: {invite_auth: off}", "features: {monitor_code: \"\"}", "features: {monitor_code: \"#77\"}"} {
		if err := parseValidate(t, y); err != nil {
			t.Errorf("%s: %v", y, err)
		}
	}
}

// TestTrunkPasswordNeverPrinted: the password resolves from each source
// and is masked in fmt, JSON and validation errors.
func TestTrunkPasswordNeverPrinted(t *testing.T) {
	const pw = "s3cret-trunk-pw"
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("  "+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLOAK_TEST_TRUNK_PW", pw)
	for _, a := range []TrunkAuth{{User: "u", Password: pw}, {User: "u", PasswordFile: file}, {User: "u", PasswordEnv: "CLOAK_TEST_TRUNK_PW"}} {
		got, err := a.ResolvePassword()
		if err != nil || got.Reveal() != pw {
			t.Fatalf("%+v: %q, %v", a, got.Reveal(), err)
		}
	}
	c := Default()
	c.Trunks = []Trunk{{Name: "t", Host: "192.0.2.1", Transport: "udp", Numbers: TrunkNumbers{Country: "GB"},
		Auth: TrunkAuth{User: "u", Password: pw, PasswordEnv: "X"}, Register: TrunkRegister{Enabled: true}}}
	j, _ := json.Marshal(c)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, j)
	if err := c.Validate(); err != nil {
		out += err.Error()
	} else {
		t.Fatal("two password sources accepted")
	}
	if strings.Contains(out, pw) {
		t.Fatal("the trunk password was printed")
	}
	if _, err := (TrunkAuth{PasswordFile: filepath.Join(dir, "missing")}).ResolvePassword(); err == nil {
		t.Fatal("missing password file accepted")
	}
}
