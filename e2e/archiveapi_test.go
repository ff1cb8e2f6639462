package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/xuri/excelize/v2"
)

// TestArchiveAPIPayCall: after a real card-payment call, the archive's
// HTTP API on serve's admin listener finds it, serves its WAV by range
// (206, the file's bytes), exports it with no card in CSV or XLSX, and
// every access leaves a verified audit row.
func TestArchiveAPIPayCall(t *testing.T) {
	requireTools(t, "sipp")
	c := startCloak(t, ivrOpts("archive:\n  data:\n    keys:\n      payment_result: {policy: keep}\n"))
	defer c.stop()
	s := runSipp(t, c, sippArgs{
		scenario: "ivr-info.xml", service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
		keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
			"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
	})
	if !strings.Contains(s.messages(), "BYE sip:caller@") || !c.waitLog(`"message":"call ended"`, 5*time.Second) {
		t.Fatal("the call did not end")
	}
	if !strings.Contains(c.log(), "archive API at /api/archive/ for signed-in users per role") {
		t.Error("serve did not say at start who may use the archive API")
	}
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.adminURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
		return res, b
	}
	// The writer stores the call shortly after it ended.
	var page struct {
		Total        int                   `json:"total"`
		Interactions []archive.Interaction `json:"interactions"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for page.Total == 0 && time.Now().Before(deadline) {
		if _, b := get("/api/archive/interactions?caller=caller&recorded=true"); json.Unmarshal(b, &page) != nil {
			t.Fatalf("search: %s", b)
		}
		if page.Total == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if page.Total != 1 || page.Interactions[0].Route != "flow:pay" {
		t.Fatalf("search: %+v", page)
	}
	id := page.Interactions[0].ID
	res, b := get("/api/archive/interactions/" + id)
	var shown archive.Interaction
	if res.StatusCode != 200 || json.Unmarshal(b, &shown) != nil || shown.Recording == nil {
		t.Fatalf("show: %d %s", res.StatusCode, b)
	}
	wav, err := os.ReadFile(shown.Recording.File)
	if err != nil || len(wav) < 1000 {
		t.Fatalf("the WAV: %d bytes, %v", len(wav), err)
	}
	res, b = get("/api/archive/interactions/"+id+"/recording", "Range", "bytes=500-999")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(b, wav[500:1000]) ||
		res.Header.Get("Content-Range") != fmt.Sprintf("bytes 500-999/%d", len(wav)) {
		t.Errorf("range: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(b))
	}
	if res, b = get("/api/archive/interactions/" + id + "/recording/play"); res.StatusCode != 200 || !bytes.Equal(b, wav) {
		t.Errorf("play: %d, %d bytes", res.StatusCode, len(b))
	}
	res, csv := get("/api/archive/export?format=csv&caller=caller")
	if res.StatusCode != 200 || !strings.Contains(string(csv), id) || !strings.Contains(string(csv), "data:card_last4") {
		t.Errorf("csv export: %d\n%s", res.StatusCode, csv)
	}
	if strings.Contains(onlyDigits(string(csv)), testCard) || strings.Contains(string(csv), ","+testCard[12:]) {
		t.Errorf("the csv export holds card digits:\n%s", csv)
	}
	res, xb := get("/api/archive/export?format=xlsx")
	x, err := excelize.OpenReader(bytes.NewReader(xb))
	if res.StatusCode != 200 || err != nil {
		t.Fatalf("xlsx export: %d %v", res.StatusCode, err)
	}
	rows, _ := x.GetRows("interactions")
	x.Close()
	if len(rows) != 2 {
		t.Errorf("xlsx: %d rows", len(rows))
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.Contains(onlyDigits(cell), testCard) || cell == testCard[12:] {
				t.Errorf("xlsx cell %q holds card digits", cell)
			}
		}
	}
	var aud struct {
		Entries  []archive.AuditEntry `json:"entries"`
		Verified bool                 `json:"verified"`
	}
	if _, b := get("/api/archive/audit?verify=true"); json.Unmarshal(b, &aud) != nil || !aud.Verified {
		t.Fatalf("audit verify: %s", b)
	}
	var actions []string
	for _, e := range aud.Entries {
		if e.Action == archive.ActionInitialAdmin || e.Action == archive.ActionTokenCreate {
			continue // the first start's admin, the harness's token
		}
		if !strings.HasPrefix(e.Actor, "token:e2e-harness#") || e.Address != "127.0.0.1" {
			t.Errorf("actor %q address %q", e.Actor, e.Address)
		}
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); got != "view download play export export" {
		t.Errorf("audited %q", got)
	}
}
