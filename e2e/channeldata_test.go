package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/archive"
)

// TestArchiveChannelDataFromHeaders: sipp's INVITE carries X-Customer-Id,
// X-Campaign and an X-Account holding the test card. During the call the
// API shows the customer id and campaign as participant data, and not
// the account (refused as a possible card number, logged by name only);
// after it the archive holds the customer id masked with a token (found
// by `search -data customer_id=…`) and the campaign kept as its policy
// says; no output holds the card.
func TestArchiveChannelDataFromHeaders(t *testing.T) {
	t.Parallel()
	requireTools(t, "sipp")
	const customer = "CUST-20931"
	c := startCloak(t, cloakOpts{admin: true, json: true, extra: "archive:\n" +
		"  channel_data:\n" +
		"    - {header: X-Customer-Id, key: customer_id}\n" +
		"    - {header: x-campaign, key: campaign}\n" +
		"    - {header: X-Account, key: account_ref}\n" +
		"  data:\n    keys:\n      campaign: {policy: keep}\n"})
	s := startSipp(t, c, sippArgs{scenario: "channel-data.xml", service: "echo", pause: 4 * time.Second,
		keys: map[string]string{"customer_id": customer, "campaign": "spring-renewals", "account": testCard}})
	var live apiCall
	for deadline := time.Now().Add(10 * time.Second); live.ID == "" && time.Now().Before(deadline); {
		calls, err := apiCalls(t, c)
		if err == nil {
			for _, cl := range calls {
				if cl.Data["customer_id"] != "" {
					live = cl
				}
			}
		}
		if live.ID == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	s.wait(t)
	if live.Data["customer_id"] != customer || live.Data["campaign"] != "spring-renewals" {
		t.Fatalf("live call data %v, want the headers' customer_id and campaign\n%s", live.Data, tail(c.log(), 3000))
	}
	if v, ok := live.Data["account_ref"]; ok {
		t.Errorf("account_ref (a card in X-Account) reached participant data: %d chars", len(v))
	}
	if !c.waitLog(`"message":"call ended"`, 5*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}
	c.stop() // the writer drains at shutdown
	if !strings.Contains(c.log(), "channel data refused: the value holds a possible card number") {
		t.Error("the refused X-Account was not logged")
	}
	if strings.Contains(onlyDigits(c.log()), testCard) {
		t.Error("cloak's log holds the test card")
	}

	code, out, errs := cloakCLI(t, "archive", "search", "-data", c.dataDir, "-data", "customer_id="+customer, "-json")
	var found []archive.Interaction
	if code != 0 || json.Unmarshal([]byte(out), &found) != nil || len(found) != 1 || found[0].ID != live.ID {
		t.Fatalf("search -data customer_id=…: exit %d %s\n%s", code, errs, out)
	}
	if code, out, _ := cloakCLI(t, "archive", "search", "-data", c.dataDir, "-data", "customer_id=CUST-20932", "-json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("a search by another customer id found: %s", out)
	}
	code, out, errs = cloakCLI(t, "archive", "show", live.ID, "-json", "-data", c.dataDir)
	var shown archive.Interaction
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("show: exit %d %s", code, errs)
	}
	data := map[string]archive.DataItem{}
	for _, d := range shown.Data {
		data[d.Key] = d
	}
	if d := data["customer_id"]; d.Policy != archive.MaskAfterCall || d.Value != "****31" || d.Token == "" {
		t.Errorf("customer_id stored as %+v, want ****31 and a token", d)
	}
	if d := data["campaign"]; d.Policy != archive.Keep || d.Value != "spring-renewals" {
		t.Errorf("campaign stored as %+v, want kept", d)
	}
	if _, ok := data["account_ref"]; ok {
		t.Error("account_ref stored")
	}
	if strings.Contains(out, customer) || strings.Contains(onlyDigits(out), testCard) {
		t.Errorf("show holds the clear customer id or the card:\n%s", out)
	}
}
