package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/config"
)

// cloakCLI runs the built binary with args and returns its exit code,
// stdout and stderr.
func cloakCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cloakBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cloak %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestArchivePayCall: a sipp call keys the test card into the demo pay
// flow; once cloak has stopped, `cloak archive search -caller` lists the
// call with its route and times, `show` has its secure segment and trace
// with the card's last four masked as participant data, a search by the
// masked value finds it through its token, the view is in a verified
// audit log, a purge with recordings expired deletes the WAV and keeps
// the interaction, and no column of any table holds the card.
func TestArchivePayCall(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	// Recordings expire after a second, so a purge right after the call
	// removes the WAV and keeps the interaction.
	c := startCloak(t, ivrOpts("archive:\n  retention: {recordings: 1s}\n  data:\n    keys:\n      payment_result: {policy: keep}\n"))
	s := runSipp(t, c, sippArgs{
		scenario: "ivr-info.xml", service: "pay", timeout: 45 * time.Second, pause: 14300 * time.Millisecond,
		keys: map[string]string{"pcap": scenario("pcap/pay-card-expiry.pcap"), "fmts": "0 101",
			"d1": testCVV[0:1], "d2": testCVV[1:2], "d3": testCVV[2:3], "d4": "#"},
	})
	_, id := endedByCloak(t, c, s) // stops cloak: the writer drained at shutdown

	code, out, errs := cloakCLI(t, "archive", "search", "-data", c.dataDir, "-caller", "caller", "-json")
	if code != 0 {
		t.Fatalf("archive search: exit %d: %s", code, errs)
	}
	var found []archive.Interaction
	if err := json.Unmarshal([]byte(out), &found); err != nil {
		t.Fatalf("archive search -json: %v\n%s", err, out)
	}
	if len(found) != 1 || found[0].ID != id || found[0].Route != "flow:pay" || found[0].Called != "pay" ||
		found[0].Offered.IsZero() || found[0].Answered.IsZero() || !found[0].Ended.After(found[0].Answered) {
		t.Fatalf("search -caller caller: %+v, want the call %s on flow:pay with its times", found, id)
	}

	code, out, errs = cloakCLI(t, "archive", "show", id, "-json", "-data", c.dataDir)
	if code != 0 {
		t.Fatalf("archive show: exit %d: %s", code, errs)
	}
	var shown struct {
		archive.Interaction
		Audit []archive.AuditEntry `json:"audit"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err)
	}
	data := map[string]archive.DataItem{}
	for _, d := range shown.Data {
		data[d.Key] = d
	}
	if d := data["card_last4"]; d.Policy != archive.MaskAfterCall || d.Value != "****" || d.Token == "" {
		t.Errorf("card_last4 stored as %+v, want a mask and a token", d)
	}
	if d := data["payment_result"]; d.Policy != archive.Keep || d.Value == "" {
		t.Errorf("payment_result stored as %+v, want kept", d)
	}
	if len(shown.Segments) != 1 || shown.Segments[0].Flow != "pay" || shown.Segments[0].End.IsZero() ||
		shown.Segments[0].Outputs["card_last4"] != "****" {
		t.Errorf("secure segments %+v", shown.Segments)
	}
	var secureSteps int
	for _, st := range shown.Trace {
		if st.Secure {
			secureSteps++
		}
	}
	if secureSteps == 0 {
		t.Errorf("no secure step in the trace: %+v", shown.Trace)
	}
	// The caller leg's final quality: the pcap's voice, none lost.
	if len(shown.Quality) == 0 || shown.Quality[0].Leg != "caller" || shown.Quality[0].Received <= 500 || shown.Quality[0].MOS <= 4 {
		t.Errorf("leg quality %+v, want the caller leg with > 500 packets received and MOS > 4", shown.Quality)
	}
	if len(shown.Audit) != 1 || shown.Audit[0].Action != archive.ActionView || !strings.HasPrefix(shown.Audit[0].Actor, "cli:") {
		t.Errorf("audit of the view: %+v", shown.Audit)
	}

	// Masked, yet found by its exact value (the token).
	code, out, _ = cloakCLI(t, "archive", "search", "-data", c.dataDir, "-data", "card_last4="+testCard[12:], "-json")
	if code != 0 || !strings.Contains(out, `"id": "`+id+`"`) {
		t.Errorf("search by the masked card_last4: exit %d\n%s", code, out)
	}
	code, out, _ = cloakCLI(t, "archive", "search", "-data", c.dataDir, "-data", "card_last4=2222", "-json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("search by a wrong card_last4 found: %s", out)
	}
	if shown.Recording == nil || shown.Recording.SHA256 == "" || !shown.Recording.DeletedAt.IsZero() {
		t.Fatalf("recording index: %+v", shown.Recording)
	}
	if _, err := os.Stat(shown.Recording.File); err != nil {
		t.Fatalf("the indexed WAV: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	// The CLI reads serve's archive section; the harness keeps serve's
	// file to itself, so the CLI gets the same section in its own.
	cliCfg := filepath.Join(t.TempDir(), "cli.yaml")
	if err := os.WriteFile(cliCfg, []byte("archive:\n  retention: {recordings: 1s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cloakCLI(t, "archive", "purge", "-config", cliCfg, "-data", c.dataDir); code != 0 || !strings.Contains(out, "deleted: 0 interaction(s), 1 recording(s)") {
		t.Errorf("purge: exit %d: %s%s", code, out, errs)
	}
	if _, err := os.Stat(shown.Recording.File); !os.IsNotExist(err) {
		t.Errorf("WAV after the purge: %v", err)
	}
	if code, out, _ := cloakCLI(t, "archive", "show", id, "-json", "-data", c.dataDir); code != 0 || !strings.Contains(out, `"deleted_by": "retention"`) {
		t.Errorf("show after the purge: exit %d\n%s", code, out)
	}
	if code, _, errs := cloakCLI(t, "archive", "audit", "-verify", "-data", c.dataDir); code != 0 {
		t.Errorf("audit -verify: exit %d: %s", code, errs)
	}

	// No column of any table holds the card (the leak canary reads the
	// database files' bytes too; this reads what SQL returns).
	o, err := archive.OptionsFrom(config.DefaultArchive(), c.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, table := range []string{"interactions", "participant_data", "secure_segments", "trace_steps", "recordings", "audit_log"} {
		for _, v := range dumpTable(t, st.DB(), table) {
			if digits := onlyDigits(v); strings.Contains(digits, testCard) {
				t.Errorf("table %s holds the test card", table)
			}
		}
	}
}

// dumpTable returns every value of every row of table as text.
func dumpTable(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			out = append(out, v.String)
		}
	}
	return out
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
