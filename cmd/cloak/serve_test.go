package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestServeBindErrorNamesFieldAndFlag: cloak serve on a SIP address
// another process holds exits 1 with one line naming the field, its flag
// and the address, and never says it is ready.
func TestServeBindErrorNamesFieldAndFlag(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rtp := u.LocalAddr().(*net.UDPAddr).Port &^ 1
	u.Close()
	var out, errb bytes.Buffer
	code := runServe([]string{"-sip", l.Addr().String(), "-admin", "off", "-data", t.TempDir(),
		"-rtp-ports", fmt.Sprintf("%d-%d", rtp, rtp+9)}, &out, &errb)
	want := "cannot start: sip.listen (-sip): " + l.Addr().String() + " already in use (tcp)"
	if code != 1 || !strings.Contains(errb.String(), want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, errb.String(), want)
	}
	if strings.Contains(errb.String(), "is ready") {
		t.Errorf("ready logged:\n%s", errb.String())
	}
}
