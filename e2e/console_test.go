package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/console"
)

// The web console (issue 23) in a real browser: Debian's chromium,
// headless, driven by chromedp, on loopback only. Every response body
// and every Server-Sent Event the browser received, and the DOM after
// each step, are kept (browserSink): the browser is one more sink of
// call data, and the leak checks read all of it.

// consolePassword is every console test user's password.
const consolePassword = "a long console passphrase 23"

// browserSink is what the browser received: each response (URL, status,
// CSP header, body), each SSE message, each DOM snapshot, and each
// script exception or console/CSP error.
type browserSink struct {
	mu        sync.Mutex
	wg        sync.WaitGroup
	responses []sinkResponse
	sse       []string
	doms      []string
	errors    []string
	urls      map[network.RequestID]*network.Response
	types     map[network.RequestID]network.ResourceType
}

type sinkResponse struct {
	url, ctype, csp string
	status          int64
	document        bool
	body            string
}

// browserSlots lets one browser test (Chromium, beside a -race cloak
// and sipp) run at a time among the parallel tests: three at once on two
// shared cores left a payment panel that never counted up live
// (2026-12-07). A browser test takes it first thing, before it starts
// cloak.
var browserSlots = make(chan struct{}, 1)

// startBrowser starts headless chromium (its own profile, loopback
// only, a w×h window) and returns its context.
func startBrowser(t *testing.T, w, h int) context.Context {
	t.Helper()
	requireTools(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(mustLookPath(t, "chromium")),
		chromedp.NoSandbox, // root in CI containers
		chromedp.WindowSize(w, h),
		chromedp.UserDataDir(t.TempDir()),
		// Nothing but loopback: no name resolves, no proxy is asked.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-gpu", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// newTab opens a tab of browser in a browser context of its own (its
// own cookies: one person signed in per tab) and returns it with the
// sink of what it receives.
func newTab(t *testing.T, browser context.Context) (context.Context, *browserSink) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	s := &browserSink{urls: map[network.RequestID]*network.Response{}, types: map[network.RequestID]network.ResourceType{}}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			s.mu.Lock()
			s.urls[e.RequestID] = e.Response
			s.types[e.RequestID] = e.Type
			s.mu.Unlock()
		case *network.EventLoadingFinished:
			s.mu.Lock()
			resp, typ := s.urls[e.RequestID], s.types[e.RequestID]
			s.mu.Unlock()
			if resp == nil || typ == network.ResourceTypeEventSource || typ == network.ResourceTypeMedia {
				return // an SSE stream (its messages come below); audio
			}
			s.wg.Add(1)
			go func() { // no command from inside the listener
				defer s.wg.Done()
				res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: e.RequestID})
				s.mu.Lock()
				defer s.mu.Unlock()
				r := sinkResponse{url: resp.URL, status: resp.Status, document: typ == network.ResourceTypeDocument,
					ctype: respHeader(resp.Headers, "Content-Type"), csp: respHeader(resp.Headers, "Content-Security-Policy")}
				if err != nil {
					r.body = "(body not read: " + err.Error() + ")"
				} else {
					r.body = string(res.Body)
				}
				s.responses = append(s.responses, r)
			}()
		case *network.EventEventSourceMessageReceived:
			s.mu.Lock()
			s.sse = append(s.sse, e.EventName+" "+e.Data)
			s.mu.Unlock()
		case *runtime.EventExceptionThrown:
			s.mu.Lock()
			s.errors = append(s.errors, "exception: "+e.ExceptionDetails.Text)
			s.mu.Unlock()
		case *log.EventEntryAdded:
			refused := strings.Contains(e.Entry.Text, "status of 403") || strings.Contains(e.Entry.Text, "status of 40") &&
				(strings.Contains(e.Entry.URL, "/api/") || strings.HasSuffix(e.Entry.URL, "/favicon.ico"))
			if e.Entry.Level == log.EntryLevelError && !refused {
				// A page or API call refused (403, 401, 409: the tests
				// ask for some), or the favicon the browser asks for by
				// itself, is logged as a network error: expected.
				// Anything else (a 404 on the script, a CSP violation)
				// is not.
				s.mu.Lock()
				s.errors = append(s.errors, fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
				s.mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, struct{}{}); err != nil {
		t.Fatal(err)
	}
	return ctx, s
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func respHeader(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// dom keeps the page's DOM as it is now (after a step).
func (s *browserSink) dom(t *testing.T, ctx context.Context, step string) string {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatalf("%s: DOM: %v", step, err)
	}
	s.mu.Lock()
	s.doms = append(s.doms, step+"\n"+html)
	s.mu.Unlock()
	return html
}

// all is everything the browser received, bodies fetched.
func (s *browserSink) all() (responses []sinkResponse, sse, doms, errs []string) {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkResponse(nil), s.responses...), append([]string(nil), s.sse...),
		append([]string(nil), s.doms...), append([]string(nil), s.errors...)
}

// checkPages: every console document the browser loaded carried the
// CSP, and no script error or CSP violation was reported.
func (s *browserSink) checkPages(t *testing.T) {
	t.Helper()
	resp, _, _, errs := s.all()
	docs := 0
	for _, r := range resp {
		if r.document && r.status == 200 {
			docs++
			if r.csp != console.CSP {
				t.Errorf("%s: Content-Security-Policy %q, want %q", r.url, r.csp, console.CSP)
			}
		}
	}
	if docs == 0 {
		t.Error("no console page was loaded")
	}
	for _, e := range errs {
		t.Errorf("browser reported: %s", e)
	}
}

// shot saves a screenshot of the page as docs/screenshots/NAME.png when
// CLOAK_SCREENSHOTS=1 (to refresh the docs), else under the test's
// temporary directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := t.TempDir()
	if os.Getenv("CLOAK_SCREENSHOTS") == "1" {
		dir = filepath.Join(root, "docs", "screenshots")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// consoleUsers adds a user of each role beside the running node (alice
// is the agent alice).
func consoleUsers(t *testing.T, c *cloak) {
	t.Helper()
	for _, u := range []struct{ name, role, agent string }{
		{"alice", "agent", "alice"}, {"sue", "supervisor", ""}, {"archie", "archivist", ""},
		{"audrey", "auditor", ""}, {"ada", "admin", ""},
	} {
		args := []string{"users", "add", u.name, "-role", u.role, "-password-stdin"}
		if u.agent != "" {
			args = append(args, "-agent", u.agent)
		}
		if _, errs, err := c.cli(consolePassword+"\n", args...); err != nil {
			t.Fatalf("cloak users add %s: %v %s", u.name, err, errs)
		}
	}
}

// browserSignIn signs in through the sign-in page and waits for the
// landing page's navigation.
func browserSignIn(t *testing.T, ctx context.Context, c *cloak, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second) // argon2id under -race
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(c.adminURL+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
		chromedp.SendKeys(chromedp.ID("signin-name"), name),
		chromedp.SendKeys(chromedp.ID("signin-password"), consolePassword+"\n"), // Enter submits
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)
	if err != nil {
		t.Fatalf("sign in as %s: %v", name, err)
	}
}

func browserSignOut(t *testing.T, ctx context.Context, c *cloak) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.adminURL+"/"), chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin-form"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
}

// navLinks is the navigation's targets on the current page.
func navLinks(t *testing.T, ctx context.Context) []string {
	t.Helper()
	links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("nav a")].map(a => a.getAttribute("href"))`))
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// TestConsoleRoles: signed in through the sign-in page as each role, the
// browser sees only the pages auth.Rules lets that role open; a page it
// may not open answers 403 with the "not for your role" page; signing
// out ends the session (the next page goes back to signing in). Every
// page carries the CSP and runs without a script error or a CSP
// violation. Screenshots of each page at 1280×800.
func TestConsoleRoles(t *testing.T) {
	t.Parallel()
	holdSlot(t, browserSlots)
	requireTools(t, "chromium")
	c := startCloak(t, cloakOpts{admin: true, json: true,
		extra: "limits: {max_cpu: 0}\nagents:\n  - {name: alice, uri: \"sip:agent@127.0.0.1:9\", queues: []}\n"})
	consoleUsers(t, c)
	// 120 archived interactions: three pages of the archive's 50.
	if out, errs, err := c.cli("", "archive", "dev-generate", "-n", "120", "-days", "2"); err != nil {
		t.Fatalf("archive dev-generate: %v %s %s", err, out, errs)
	}
	ctx, sink := newTab(t, startBrowser(t, 1280, 800))
	want := map[string][]string{
		"alice":  {"/desk"},
		"sue":    {"/desk", "/live", "/archive", "/holds", "/fraud"},
		"archie": {"/archive", "/anonymise"},
		"audrey": {"/archive", "/audit"},
		"ada":    {"/desk", "/live", "/archive", "/anonymise", "/audit", "/holds", "/fraud", "/users"},
	}
	every := []string{"/desk", "/live", "/archive", "/anonymise", "/audit", "/holds", "/fraud", "/users"}
	for _, name := range []string{"alice", "sue", "archie", "audrey", "ada"} {
		browserSignIn(t, ctx, c, name)
		if got := navLinks(t, ctx); strings.Join(got, " ") != strings.Join(want[name], " ") {
			t.Errorf("%s's navigation: %v, want %v", name, got, want[name])
		}
		for _, pg := range every {
			allowed := strings.Contains(" "+strings.Join(want[name], " ")+" ", " "+pg+" ")
			resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(c.adminURL+pg))
			if err != nil {
				t.Fatalf("%s %s: %v", name, pg, err)
			}
			switch {
			case allowed && resp.Status != 200:
				t.Errorf("%s %s: %d, want 200", name, pg, resp.Status)
			case !allowed:
				txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("denied")))
				if resp.Status != 403 || err != nil || !strings.Contains(txt, "may not") {
					t.Errorf("%s %s: %d %q, want 403 and the denied page", name, pg, resp.Status, txt)
				}
			}
			if allowed && name == "ada" {
				time.Sleep(700 * time.Millisecond) // the page's first fetch
				shot(t, ctx, "console-"+strings.Trim(pg, "/"))
			}
			sink.dom(t, ctx, name+" "+pg)
		}
		if name == "ada" {
			checkUsersPage(t, ctx, sink, c)
			checkArchivePaging(t, ctx, sink, c)
		}
		if name == "sue" {
			checkFraudPage(t, ctx, sink, c)
		}
		browserSignOut(t, ctx, c)
		// Signed out: a page sends the browser back to signing in.
		if err := chromedp.Do(ctx, chromedp.Navigate(c.adminURL+want[name][0]), chromedp.WaitVisible(chromedp.ID("signin-form"))); err != nil {
			t.Errorf("%s signed out, %s: %v", name, want[name][0], err)
		}
	}
	shot(t, ctx, "console-signin")
	sink.checkPages(t)
	c.stop()
}

// checkFraudPage: a supervisor adds a static entry on the Fraud data
// page (normalised: the national number shows in E.164), sees it listed
// and in the API, and removes it.
func checkFraudPage(t *testing.T, ctx context.Context, sink *browserSink, c *cloak) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	row := `#entries tr[data-entry="phone:+447700900666"]`
	if err := chromedp.Do(ctx, chromedp.Navigate(c.adminURL+"/fraud"), chromedp.WaitVisible(chromedp.ID("data-add")),
		chromedp.SetValue(chromedp.ID("d-type"), "phone"), chromedp.SendKeys(chromedp.ID("d-value"), "07700 900666"),
		chromedp.SendKeys(chromedp.ID("d-score"), "150"), chromedp.SendKeys(chromedp.ID("d-comment"), "chargeback"),
		chromedp.Click(chromedp.CSS(`#data-add button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("fraud page: add an entry: %v", err)
	}
	if code, body := apiDo(t, c, "GET", "/api/fraud/data?type=phone", ""); code != 200 || !strings.Contains(body, `"added_by": "user:sue"`) {
		t.Errorf("the entry added on the page: %d %s", code, body)
	}
	sink.dom(t, ctx, "fraud data")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" button")), chromedp.WaitNotPresent(chromedp.CSS(row))); err != nil {
		t.Errorf("fraud page: remove the entry: %v", err)
	}
}

// checkUsersPage: the admin's Users page lists every user and token;
// disabling sue shows her disabled (and enabling her back), revoking the
// harness's token shows it revoked and the API refuses it from then on.
func checkUsersPage(t *testing.T, ctx context.Context, sink *browserSink, c *cloak) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.adminURL+"/users"), chromedp.WaitVisible(chromedp.CSS(`#users tr[data-user="sue"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tokens tr[data-token="e2e-harness"]`))); err != nil {
		t.Fatalf("users page: %v", err)
	}
	users, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("users")))
	for _, u := range []string{"admin", "alice", "sue", "archie", "audrey", "ada"} {
		if !strings.Contains(users, u) {
			t.Errorf("the users page lacks %s: %q", u, users)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#users tr[data-user="sue"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-user="sue"][data-state="disabled"]`)),
		chromedp.Click(chromedp.CSS(`#users tr[data-user="sue"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-user="sue"][data-state="active"]`))); err != nil {
		t.Errorf("disable and enable sue: %v", err)
	}
	// She adds a user and creates a token from the page; the token is
	// shown once and opens the API.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("u-name"), "newbie"), chromedp.SetValue(chromedp.ID("u-role"), "auditor"),
		chromedp.SendKeys(chromedp.ID("u-password"), consolePassword), chromedp.Click(chromedp.ID("u-add")),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-user="newbie"]`))); err != nil {
		t.Errorf("add a user from the page: %v", err)
	}
	if row, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#users tr[data-user="newbie"]`))); !strings.Contains(row, "auditor") {
		t.Errorf("the new user's row: %q", row)
	}
	if pw, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("u-password"))); pw != "" {
		t.Error("the password stays in the form")
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("t-name"), "wallboard"), chromedp.SetValue(chromedp.ID("t-role"), "supervisor"),
		chromedp.Click(chromedp.ID("t-create")), chromedp.WaitVisible(chromedp.ID("t-made")),
		chromedp.WaitVisible(chromedp.CSS(`#tokens tr[data-token="wallboard"]`))); err != nil {
		t.Errorf("create a token from the page: %v", err)
	}
	made, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("t-made-token")))
	req, _ := http.NewRequest("GET", c.adminURL+"/api/agents", nil)
	req.Header.Set("Authorization", "Bearer "+made)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("the token made on the page (%d chars) does not open the API: %v %v", len(made), err, res)
	} else {
		res.Body.Close()
	}
	shot(t, ctx, "console-users")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#tokens tr[data-token="e2e-harness"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#tokens tr[data-token="e2e-harness"][data-state="revoked"]`))); err != nil {
		t.Errorf("revoke the harness token: %v", err)
	}
	if code, _ := apiDo(t, c, "GET", "/api/calls", ""); code != http.StatusUnauthorized {
		t.Errorf("the revoked token still opens the API: %d", code)
	}
	sink.dom(t, ctx, "users")
}

// checkArchivePaging: the archive page's Next and Previous walk the 120
// interactions in pages of 50 by keyset (the API's "next" as after=),
// numbering the rows as offsets would, and Previous comes back to the
// same page.
func checkArchivePaging(t *testing.T, ctx context.Context, sink *browserSink, c *cloak) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	info := func(want string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("page-info").textContent === "`+want+`"`,
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("page-info")))
			t.Fatalf("archive pages: %q, want %q (%v)", got, want, err)
		}
		first, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#results tbody tr a`), "href"))
		return first.Value
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(c.adminURL+"/archive")); err != nil {
		t.Fatal(err)
	}
	p1 := info("1–50 of 120")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("page-next"))); err != nil {
		t.Fatal(err)
	}
	p2 := info("51–100 of 120")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("page-next"))); err != nil {
		t.Fatal(err)
	}
	p3 := info("101–120 of 120")
	if next, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("page-next").disabled`)); !next {
		t.Error("Next is enabled on the last page")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("page-prev"))); err != nil {
		t.Fatal(err)
	}
	if back := info("51–100 of 120"); back != p2 || p1 == p2 || p2 == p3 {
		t.Errorf("pages start at %s, %s, %s; back at %s", p1, p2, p3, back)
	}
	resp, _, _, _ := sink.all()
	keyset := 0
	for _, r := range resp {
		if strings.Contains(r.url, "/api/archive/interactions?") && strings.Contains(r.url, "after=") {
			keyset++
		}
	}
	if keyset < 3 {
		t.Errorf("%d archive searches by keyset (after=), want 3", keyset)
	}
	sink.dom(t, ctx, "archive paging")
}

// TestConsoleAgentPayment is the agent's scenario: alice, signed in on
// her desktop in a 420 px wide window, receives a call from the sales
// queue (sipp calls main and keys 2; the agent is a sipp UAS), presses
// Take payment; the caller keys the test card, expiry and CVV (RFC 4733,
// caller-agent-rfc4733.pcap); the panel counts the card up to 16/16 and
// shows each field valid; alice submits; the panel shows approved and
// the last four, then that the caller is back with her. A supervisor's
// live page shows the call meanwhile. Everything the browsers received
// holds no card digit but the last four, and those only once the result
// came.
func TestConsoleAgentPayment(t *testing.T) {
	t.Parallel()
	holdSlot(t, browserSlots)
	requireTools(t, "chromium", "sipp")
	gw := startTestGateway(t)
	agentPort, agentMedia, callerMedia := freePorts(t, 1, true), freePorts(t, 4, false), freePorts(t, 4, false)
	c := startCloak(t, ivrOpts(agentYAML(agentPort, "limits: {max_cpu: 0}\nrecording: {default: always, routes: {main: always}}\n"+gw.yaml())))
	consoleUsers(t, c)
	browser := startBrowser(t, 420, 900)
	ctx, sink := newTab(t, browser)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(420, 900)); err != nil { // beside a softphone
		t.Fatal(err)
	}
	browserSignIn(t, ctx, c, "alice")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("no-call"))); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "console-desk-idle")

	agent := startSipp(t, c, sippArgs{scenario: "agent.xml", uas: true, localPort: agentPort, mediaPort: agentMedia,
		timeout: 90 * time.Second, keys: map[string]string{"pcap": scenario("pcap/agent-talk.pcap")}})
	time.Sleep(300 * time.Millisecond) // sipp UAS listening
	caller := startSipp(t, c, sippArgs{scenario: "ivr-hangup.xml", service: "main", mediaPort: callerMedia,
		pause: 29 * time.Second, timeout: 90 * time.Second,
		keys: map[string]string{"pcap": scenario("pcap/caller-agent-rfc4733.pcap"), "fmts": "0 101"}})

	// The call reaches alice's desktop; she takes a payment with the
	// keyboard (focus the button, Enter).
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("call"))); err != nil {
		t.Fatalf("the call never showed on the desktop: %v", err)
	}
	caller1, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("call-caller")))
	if caller1 == "" {
		t.Error("the desktop shows no caller number")
	}
	// Beside a softphone: nothing wider than the 420 px window.
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); err != nil || w > 420 {
		t.Errorf("the desktop is %.0f px wide in a 420 px window (%v)", w, err)
	}
	sink.dom(t, ctx, "call offered")
	// Recording pause and resume, by keyboard.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("rec-pause")), chromedp.SendKeys(chromedp.ID("rec-pause"), "\r"),
		chromedp.WaitVisible(chromedp.ID("rec-resume"))); err != nil {
		t.Fatalf("pause the recording: %v", err)
	}
	if st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("call-recording"))); st != "paused" {
		t.Errorf("recording shown %q after pause", st)
	}
	// A reload reads the state from the call info: still paused, with
	// the resume button.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#call-recording[data-state="paused"]`)),
		chromedp.WaitVisible(chromedp.ID("rec-resume"))); err != nil {
		t.Fatalf("after a reload the desk does not show the recording paused: %v", err)
	}
	if st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("call-recording"))); st != "paused" {
		t.Errorf("recording shown %q after pause and reload", st)
	}
	sink.dom(t, ctx, "reloaded, paused")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("rec-resume"), "\r"), chromedp.WaitVisible(chromedp.ID("rec-pause"))); err != nil {
		t.Fatalf("resume the recording: %v", err)
	}
	if st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("call-recording"))); st != "on" {
		t.Errorf("recording shown %q after resume", st)
	}
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("take-payment")), chromedp.SendKeys(chromedp.ID("take-payment"), "\r"),
		chromedp.WaitVisible(chromedp.ID("pay-panel"))); err != nil {
		t.Fatalf("take payment: %v", err)
	}
	// Meanwhile a supervisor, in a window of her own, sees the call live.
	type liveSeen struct {
		calls, agents, monitor string
		err                    error
	}
	supCtx, supSink := newTab(t, browser)
	liveDone := make(chan liveSeen, 1)
	go func() {
		var ls liveSeen
		defer func() { liveDone <- ls }()
		ctx, cancel := context.WithTimeout(supCtx, 60*time.Second)
		defer cancel()
		if ls.err = chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); ls.err != nil {
			return
		}
		if ls.err = signInAs(ctx, c, "sue"); ls.err != nil {
			return
		}
		if ls.err = chromedp.Do(ctx, chromedp.Navigate(c.adminURL+"/live"),
			chromedp.WaitVisible(chromedp.CSS(`#live-calls tbody tr`)), chromedp.WaitVisible(chromedp.CSS(`#live-agents tbody tr`))); ls.err != nil {
			return
		}
		ls.calls, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("live-calls")))
		ls.agents, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("live-agents")))
		// The listen button posts the monitor request with her session
		// and CSRF token: sue has no phone of her own here, so the call
		// answers that her name has no contact — past the guard and the
		// CSRF check, from the call itself.
		if ls.err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#live-calls tbody tr button`)),
			chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.startsWith("listen")`)); ls.err != nil {
			return
		}
		ls.monitor, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	}()

	// Watch the panel while the caller keys: the card's count only ever
	// grows, its row never shows a digit, up to 16/16 and valid.
	var seen []string
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		row, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("pay-fields")||{}).innerText||""`))
		if err == nil && (len(seen) == 0 || seen[len(seen)-1] != row) {
			seen = append(seen, row)
			if strings.Contains(row, "12/16") {
				sink.dom(t, ctx, "card 12/16")
				shot(t, ctx, "console-desk-payment")
			}
		}
		ready, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("pay-submit").disabled`))
		if ready {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	panel := seen[len(seen)-1]
	if !strings.Contains(panel, "●●●●●●●●●●●●●●●●") || !strings.Contains(panel, "16/16") || !strings.Contains(panel, "4/4") || !strings.Contains(panel, "3/3") {
		t.Fatalf("the panel never showed every field complete: %q (seen %d states)", panel, len(seen))
	}
	if strings.Count(panel, "valid") < 3 || strings.Contains(panel, "invalid") {
		t.Errorf("the panel does not show every field valid: %q", panel)
	}
	// Each field keyed once of payments.attempts (3): two left each.
	if strings.Count(panel, "2 attempts left") != 3 {
		t.Errorf("the panel does not show 2 attempts left per field: %q", panel)
	}
	if len(seen) < 5 {
		t.Errorf("the panel moved in %d states, want it to count up live", len(seen))
	}
	for _, s := range seen {
		if strings.Contains(onlyDigits(strings.ReplaceAll(s, "16/16", "")), testCard[12:]) {
			t.Errorf("LEAK: the panel shows the last four before the result: %q", s)
		}
	}
	sink.dom(t, ctx, "fields valid")
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("pay-submit")), chromedp.SendKeys(chromedp.ID("pay-submit"), "\r"),
		chromedp.WaitVisible(chromedp.ID("pay-result")), chromedp.WaitVisible(chromedp.ID("pay-returned"))); err != nil {
		t.Fatalf("submit: %v", err)
	}
	result, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("pay-result")))
	returned, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("pay-returned")))
	if !strings.Contains(result, "approved") || !strings.Contains(result, "ending "+testCard[12:]) {
		t.Errorf("result %q, want approved and the last four", result)
	}
	if !strings.Contains(returned, "caller returned to you") {
		t.Errorf("after the payment: %q", returned)
	}
	sink.dom(t, ctx, "result")
	shot(t, ctx, "console-desk-result")
	if !gw.gotCard.Load() {
		t.Error("the gateway did not receive the test card")
	}

	ls := <-liveDone
	if ls.err != nil || !strings.Contains(ls.calls, caller1) || !strings.Contains(ls.calls, "alice") || !strings.Contains(ls.agents, "alice") {
		t.Errorf("the supervisor's live page: %v; calls %q; agents %q", ls.err, ls.calls, ls.agents)
	}
	if !strings.Contains(ls.monitor, "listen: monitor target is neither") || !strings.Contains(ls.monitor, `"sue"`) {
		t.Errorf("the live page's listen button: status %q, want the call's answer for sue", ls.monitor)
	}
	supSink.dom(t, supCtx, "live")
	shot(t, supCtx, "console-live-call")

	caller.wait(t)
	agent.wait(t)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("call-ended"))); err != nil {
		t.Errorf("the desktop did not show the call's end: %v", err)
	}
	sink.dom(t, ctx, "ended")
	if !c.waitLog(`"message":"call ended"`, 10*time.Second) {
		t.Fatal(`cloak did not log "call ended"`)
	}

	// An archivist finds the call, plays its recording (the player gets
	// a duration), sees the payment's pause marker, deletes it.
	arcCtx, arcSink := newTab(t, browser)
	if err := chromedp.Do(arcCtx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	if err := signInAs(arcCtx, c, "archie"); err != nil {
		t.Fatalf("archivist: %v", err)
	}
	checkArchivePage(t, arcCtx, arcSink, caller1)
	checkAnonymisePage(t, arcCtx, arcSink, caller1)

	// The auditor's log shows the play and the delete, and verifies.
	audCtx, audSink := newTab(t, browser)
	if err := chromedp.Do(audCtx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	if err := signInAs(audCtx, c, "audrey"); err != nil {
		t.Fatalf("auditor: %v", err)
	}
	actx, cancel := context.WithTimeout(audCtx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(actx, chromedp.Navigate(c.adminURL+"/audit"), chromedp.WaitVisible(chromedp.CSS(`#audit-log tbody tr`))); err != nil {
		t.Fatalf("audit page: %v", err)
	}
	verified, _ := chromedp.Run(actx, chromedp.AttributeValue(chromedp.ID("audit-verified"), "data-verified"))
	auditText, _ := chromedp.Run(actx, chromedp.Text(chromedp.ID("audit-log")))
	if verified.Value != "1" {
		t.Errorf("the audit page does not report the log verified: %+v", verified)
	}
	for _, want := range []string{"user:archie", "\tplay\t", "\tdelete\t", "\tanonymise\t", "user:alice", "\tpause\t", "\tresume\t"} {
		if !strings.Contains(auditText, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	audSink.dom(t, audCtx, "audit")
	shot(t, audCtx, "console-audit")

	// A hold on the payment's interaction: the supervisor's holds page
	// lists it and she comments on it.
	var found struct {
		Interactions []struct {
			ID string `json:"id"`
		} `json:"interactions"`
	}
	if err := apiGet(t, c, "/api/archive/interactions?limit=1", &found); err != nil || len(found.Interactions) != 1 {
		t.Fatalf("the archived call: %v %+v", err, found)
	}
	ixID := found.Interactions[0].ID
	if code, body := apiPost(t, c, "/api/fraud/holds", `{"interaction":"`+ixID+`","comment":"caller asked twice for the amount"}`); code != http.StatusCreated {
		t.Fatalf("POST /api/fraud/holds: %d %s", code, body)
	}
	hctx, hcancel := context.WithTimeout(supCtx, 60*time.Second)
	defer hcancel()
	if err := chromedp.Do(hctx, chromedp.Navigate(c.adminURL+"/holds"), chromedp.WaitVisible(chromedp.CSS(`#holds tbody tr`)),
		chromedp.Click(chromedp.CSS(`#holds tbody tr button:last-child`)), chromedp.WaitVisible(chromedp.ID("hold-form")),
		chromedp.SendKeys(chromedp.ID("hold-note"), "checked with the caller\n"), chromedp.WaitNotVisible(chromedp.ID("hold-form"))); err != nil {
		t.Fatalf("holds page: %v", err)
	}
	holds, _ := chromedp.Run(hctx, chromedp.Text(chromedp.ID("holds")))
	if !strings.Contains(holds, ixID) || !strings.Contains(holds, "open") {
		t.Errorf("the holds page %q lacks the open hold on %s", holds, ixID)
	}
	var hl struct {
		Holds []archive.Hold `json:"holds"`
	}
	if err := apiGet(t, c, "/api/fraud/holds", &hl); err != nil || len(hl.Holds) != 1 {
		t.Fatalf("GET /api/fraud/holds: %v", err)
	}
	if err := apiGet(t, c, fmt.Sprintf("/api/fraud/holds/%d", hl.Holds[0].ID), &hl.Holds[0]); err != nil {
		t.Fatal(err)
	}
	noted := false
	for _, n := range hl.Holds[0].Notes {
		noted = noted || (n.Text == "checked with the caller" && n.Author == "user:sue")
	}
	if !noted {
		t.Errorf("the comment is not on the hold: %+v", hl.Holds[0].Notes)
	}
	supSink.dom(t, supCtx, "holds")
	shot(t, supCtx, "console-holds")
	// She releases that hold and rejects a second one (manual holds: no
	// gateway asked), each with a note, from the page's buttons.
	if code, body := apiPost(t, c, "/api/fraud/holds", `{"interaction":"`+ixID+`","comment":"second look"}`); code != http.StatusCreated {
		t.Fatalf("POST /api/fraud/holds: %d %s", code, body)
	}
	if err := apiGet(t, c, "/api/fraud/holds", &hl); err != nil || len(hl.Holds) != 2 {
		t.Fatalf("GET /api/fraud/holds: %v %d holds", err, len(hl.Holds))
	}
	for i, what := range []string{"release", "reject"} {
		id := hl.Holds[i].ID
		rowSel := fmt.Sprintf(`#holds tr[data-hold="%d"]`, id)
		want := map[string]string{"release": archive.HoldReleased, "reject": archive.HoldRejected}[what]
		if err := chromedp.Do(hctx, chromedp.Navigate(c.adminURL+"/holds"), chromedp.WaitVisible(chromedp.CSS(rowSel+`[data-status="open"]`)),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s button:nth-child(%d)`, rowSel, i+1))), chromedp.WaitVisible(chromedp.ID("hold-form")),
			chromedp.SendKeys(chromedp.ID("hold-note"), what+" after review\n"),
			chromedp.WaitVisible(chromedp.CSS(rowSel+`[data-status="`+want+`"]`))); err != nil {
			t.Fatalf("%s hold %d on the holds page: %v", what, id, err)
		}
		var h archive.Hold
		if err := apiGet(t, c, fmt.Sprintf("/api/fraud/holds/%d", id), &h); err != nil || h.Status != want {
			t.Errorf("hold %d after %s: %q (%v), want %s", id, what, h.Status, err, want)
		}
	}
	supSink.dom(t, supCtx, "holds decided")

	for _, s := range []*browserSink{sink, supSink, arcSink, audSink} {
		s.checkPages(t)
	}
	checkBrowserLeaks(t, sink, supSink, arcSink, audSink)
	c.stop()
}

// signInAs signs name in through the sign-in page (for goroutines:
// errors returned).
func signInAs(ctx context.Context, c *cloak, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return chromedp.Do(ctx,
		chromedp.Navigate(c.adminURL+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
		chromedp.SendKeys(chromedp.ID("signin-name"), name),
		chromedp.SendKeys(chromedp.ID("signin-password"), consolePassword+"\n"),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)
}

// checkArchivePage: the archive's search lists the call, its page plays
// the recording and shows the payment pause, and the recording is
// deleted with two presses.
func checkArchivePage(t *testing.T, ctx context.Context, sink *browserSink, caller string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(strings.TrimSuffix(chromedpURL(ctx), "/")+"/archive"),
		chromedp.WaitVisible(chromedp.CSS(`#results tbody tr a`))); err != nil {
		t.Fatalf("archive search: %v", err)
	}
	res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("results")))
	if !strings.Contains(res, caller) || !strings.Contains(res, "alice") {
		t.Errorf("archive results %q, want the call from %s to alice", res, caller)
	}
	sink.dom(t, ctx, "archive search")
	shot(t, ctx, "console-archive")
	// The export links download the search's results: 200 with the
	// format's content type (the sink keeps the bodies for the leak
	// check).
	for id, ctype := range map[string]string{"export-csv": "text/csv", "export-xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("`+id+`").href).then(r => r.status + " " + r.headers.get("Content-Type"))`, chromedp.EvalAwaitPromise))
		if err != nil || !strings.HasPrefix(got, "200 "+ctype) {
			t.Errorf("the %s link: %q (%v), want 200 %s", id, got, err, ctype)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#results tbody tr a`)), chromedp.WaitVisible(chromedp.ID("ix-audio")),
		chromedp.WaitVisible(chromedp.CSS(`#ix-markers li`))); err != nil {
		t.Fatalf("interaction page: %v", err)
	}
	// The player loads the WAV's header (preload=metadata): a duration.
	var duration float64
	for range 100 {
		d, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("ix-audio").duration || 0`))
		if err == nil && d > 0 {
			duration = d
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if duration < 5 {
		t.Errorf("the audio element reports %.1f s", duration)
	}
	markers, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("ix-markers")))
	if !strings.Contains(markers, "payment") {
		t.Errorf("pause markers %q, want the payment", markers)
	}
	segs, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("ix-segments")))
	if !strings.Contains(segs, "agent-assisted-payment") {
		t.Errorf("segments %q, want the payment", segs)
	}
	sink.dom(t, ctx, "interaction")
	shot(t, ctx, "console-interaction")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("ix-delete")), chromedp.WaitVisible(chromedp.ID("ix-delete-confirm")),
		chromedp.Click(chromedp.ID("ix-delete-confirm")), chromedp.WaitNotVisible(chromedp.ID("ix-audio"))); err != nil {
		t.Fatalf("delete: %v", err)
	}
	st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if !strings.Contains(st, "deleted") {
		t.Errorf("after delete the page says %q", st)
	}
	sink.dom(t, ctx, "deleted")
	// Bulk delete: select all, press, confirm. The one recording is
	// gone already, so the API's refusal comes back counted.
	if err := chromedp.Do(ctx, chromedp.Navigate(strings.TrimSuffix(chromedpURL(ctx), "/")+"/archive"),
		chromedp.WaitVisible(chromedp.CSS(`#results tbody tr input.pick`)), chromedp.Click(chromedp.ID("select-all")),
		chromedp.Click(chromedp.ID("bulk-delete")), chromedp.WaitVisible(chromedp.ID("bulk-confirm"))); err != nil {
		t.Fatalf("bulk delete: %v", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("bulk-n"))); n != "1" {
		t.Errorf("bulk delete asks for %q recordings, want 1", n)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("bulk-confirm")),
		chromedp.Poll[chromedp.Void](`document.getElementById("status").textContent.includes("recordings deleted")`)); err != nil {
		t.Fatalf("bulk delete confirm: %v", err)
	}
	if st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status"))); !strings.HasPrefix(st, "0 recordings deleted, 1 not") {
		t.Errorf("after the bulk delete the page says %q, want 0 deleted, 1 not", st)
	}
	sink.dom(t, ctx, "bulk delete")
}

// checkAnonymisePage: the archivist forgets the caller's number; the
// page counts the matches first (one), and anonymises after a second
// press; the archive search by the number then finds nothing.
func checkAnonymisePage(t *testing.T, ctx context.Context, sink *browserSink, number string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	origin := chromedpURL(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/anonymise"), chromedp.WaitVisible(chromedp.ID("forget-form")),
		chromedp.SendKeys(chromedp.ID("f-number"), number), chromedp.Click(chromedp.ID("f-preview")),
		chromedp.WaitVisible(chromedp.ID("f-confirm"))); err != nil {
		t.Fatalf("anonymise preview: %v", err)
	}
	n, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("f-count"), "data-caller"))
	if n.Value != "1" {
		t.Errorf("the preview counts %q interactions from the caller, want 1", n.Value)
	}
	shot(t, ctx, "console-anonymise")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("f-confirm")), chromedp.WaitVisible(chromedp.CSS(`#f-done[data-changed]`))); err != nil {
		t.Fatalf("anonymise: %v", err)
	}
	changed, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("f-done"), "data-changed"))
	if changed.Value != "1" {
		t.Errorf("anonymised %q interactions, want 1", changed.Value)
	}
	sink.dom(t, ctx, "anonymised")
	left, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`fetch("/api/archive/interactions?caller=`+number+`").then(r => r.json()).then(j => j.total)`, chromedp.EvalAwaitPromise))
	if err != nil || left != 0 {
		t.Errorf("after anonymising, a search by the number finds %v (%v)", left, err)
	}
}

// chromedpURL is the origin of the tab's page.
func chromedpURL(ctx context.Context) string {
	u, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.origin`))
	return u
}

// checkBrowserLeaks: nothing the browser received or showed holds the
// test card (nor its first eight digits, nor the expiry or CVV in a
// payment event); the last four only in the result.
func checkBrowserLeaks(t *testing.T, sinks ...*browserSink) {
	t.Helper()
	var resp []sinkResponse
	var sse, doms []string
	for _, s := range sinks {
		r, e, d, _ := s.all()
		resp, sse, doms = append(resp, r...), append(sse, e...), append(doms, d...)
	}
	bodies := 0
	for _, r := range resp {
		if strings.Contains(r.url, "/api/") {
			bodies++
		}
	}
	if bodies == 0 || len(sse) == 0 || len(doms) == 0 {
		t.Errorf("the sink holds %d API bodies, %d SSE messages, %d DOMs: it missed what the browser got", bodies, len(sse), len(doms))
	}
	for _, l := range browserLeaks(resp, sse, doms) {
		t.Error(l)
	}
	t.Logf("browser sink: %d responses, %d SSE messages, %d DOM snapshots", len(resp), len(sse), len(doms))
}

// browserLeaks lists what in resp, sse and doms holds card data.
func browserLeaks(resp []sinkResponse, sse, doms []string) []string {
	var leaks []string
	look := func(what, text string) {
		if strings.Contains(text, testCard) || strings.Contains(onlyDigits(text), testCard) || strings.Contains(text, testCard[:8]) {
			leaks = append(leaks, "LEAK: "+what+" holds the card")
		}
	}
	for _, r := range resp {
		look("response "+r.url, r.body)
	}
	for _, m := range sse {
		look("SSE message", m)
		name, data, _ := strings.Cut(m, " ")
		if !strings.HasPrefix(name, "payment_") {
			continue
		}
		var ev struct {
			Payment map[string]any `json:"payment"`
		}
		if json.Unmarshal([]byte(data), &ev) != nil || ev.Payment == nil {
			leaks = append(leaks, fmt.Sprintf("SSE %s: %q does not parse", name, data))
			continue
		}
		delete(ev.Payment, "id") // random hex
		b, _ := json.Marshal(ev.Payment)
		for _, x := range []string{testCard[:6], testExpiry, testCVV} {
			if strings.Contains(string(b), x) {
				leaks = append(leaks, fmt.Sprintf("LEAK: SSE %s carries %q", name, x))
			}
		}
		if name == "payment_field" && strings.Contains(string(b), testCard[12:]) {
			leaks = append(leaks, fmt.Sprintf("LEAK: a field event carries the last four: %s", b))
		}
	}
	for _, d := range doms {
		step, _, _ := strings.Cut(d, "\n")
		look("the DOM after "+step, d)
	}
	return leaks
}

// TestBrowserLeaksFound: the sink's check finds a card planted in each
// place the browser tests search (so their passing means something),
// and passes what the console legitimately shows.
func TestBrowserLeaksFound(t *testing.T) {
	clean := []string{`payment_field {"type":"payment_field","payment":{"id":"pay-9f2c01ab","field":"card","count":16,"state":"valid","brand":"visa"}}`}
	okDOM := []string{"result\n<p id=\"pay-result\">Payment approved — card ending 1111</p><td>●●●●●●●●●●●●●●●●</td><td>16/16</td>"}
	if l := browserLeaks([]sinkResponse{{url: "/api/calls", body: `[{"caller":"+447700900123"}]`}}, clean, okDOM); len(l) > 0 {
		t.Errorf("false alarms: %v", l)
	}
	for name, c := range map[string]struct {
		resp []sinkResponse
		sse  []string
		dom  []string
	}{
		"body":          {resp: []sinkResponse{{url: "/api/x", body: `{"v":"` + testCard + `"}`}}},
		"spaced body":   {resp: []sinkResponse{{url: "/api/x", body: "4111 1111 1111 1111"}}},
		"sse first six": {sse: []string{`payment_field {"payment":{"field":"card","hint":"` + testCard[:6] + `"}}`}},
		"sse cvv":       {sse: []string{`payment_field {"payment":{"field":"cvv","v":"` + testCVV + `"}}`}},
		"sse last four": {sse: []string{`payment_field {"payment":{"field":"card","mask":"************` + testCard[12:] + `"}}`}},
		"dom":           {dom: []string{"step\n<td>" + testCard[:8] + "</td>"}},
	} {
		if l := browserLeaks(c.resp, c.sse, c.dom); len(l) == 0 {
			t.Errorf("%s: the planted card was not found", name)
		}
	}
}
