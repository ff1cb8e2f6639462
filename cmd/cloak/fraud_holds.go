package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/server"
)

const fraudDataUsage = `usage: cloak fraud data add -type T -value V [-score N] [-comment C]
       cloak fraud data remove -type T -value V
       cloak fraud data list [-type T] [-json]
       cloak fraud data import FILE.csv
(every command also takes -config FILE and -data DIR, as serve)`

// fraudData implements `cloak fraud data add|remove|list|import`. Values
// are normalised as screening normalises them (fraud.default_country_code);
// add, remove and import are audited, through the same archive calls as
// the API's /api/fraud/data (Store.AddEntry, RemoveEntry, ImportEntries).
// A running serve applies a change within 5 s (at once on PostgreSQL).
func fraudData(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, fraudDataUsage)
		return 2
	}
	cmd := args[0]
	var f archiveFlags
	var typ, value, comment, score string
	fs := newArchiveFlagSet("fraud data "+cmd, stderr, &f)
	fs.StringVar(&typ, "type", "", "entry `type`: "+strings.Join(config.FraudTypes, ", "))
	fs.StringVar(&value, "value", "", "entry `value` (normalised for its type)")
	fs.StringVar(&score, "score", "", "entry `score` (default: fraud.default_scores of its type)")
	fs.StringVar(&comment, "comment", "", "why it is listed")
	pos, err := parseArchiveFlags(fs, args[1:])
	if err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "cloak fraud data %s: %v\n", cmd, err)
		return code
	}
	switch cmd {
	case "add", "remove":
		if typ == "" || value == "" || len(pos) > 0 {
			fmt.Fprintln(stderr, fraudDataUsage)
			return 2
		}
	case "list":
		if len(pos) > 0 {
			fmt.Fprintln(stderr, fraudDataUsage)
			return 2
		}
	case "import":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, fraudDataUsage)
			return 2
		}
	default:
		fmt.Fprintln(stderr, fraudDataUsage)
		return 2
	}
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		return fail(2, err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	norm := fraud.Normaliser{CountryCode: cfg.Fraud.DefaultCountryCode}
	by := archive.Changer{Actor: cliActor(), Address: "local"}
	switch cmd {
	case "add":
		e := fraud.Entry{Type: fraud.Type(typ), Value: value, Comment: comment}
		if score != "" {
			n, err := strconv.Atoi(score)
			if err != nil {
				return fail(2, fmt.Errorf("-score %q: want an integer", score))
			}
			e.Score = &n
		}
		if e, err = s.AddEntry(ctx, norm, by, e); err != nil {
			return fail(1, err)
		}
		fmt.Fprintf(stdout, "added %s %s\n", e.Type, e.Value)
	case "remove":
		e, err := s.RemoveEntry(ctx, norm, by, typ, value)
		if err != nil {
			return fail(1, err)
		}
		fmt.Fprintf(stdout, "removed %s %s\n", e.Type, e.Value)
	case "list":
		var t fraud.Type
		if typ != "" {
			if t, err = fraud.ParseType(typ); err != nil {
				return fail(2, err)
			}
		}
		entries, err := s.List(ctx, t)
		if err != nil {
			return fail(1, err)
		}
		if f.json {
			if entries == nil {
				entries = []fraud.Entry{}
			}
			return printJSON(stdout, stderr, entries)
		}
		for _, e := range entries {
			sc := "default"
			if e.Score != nil {
				sc = strconv.Itoa(*e.Score)
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", e.Type, e.Value, sc, dash(e.Comment))
		}
	case "import":
		file, err := os.Open(pos[0])
		if err != nil {
			return fail(2, err)
		}
		defer file.Close()
		n, err := s.ImportEntries(ctx, norm, by, file)
		if err != nil {
			return fail(1, fmt.Errorf("%s: %w", filepath.Base(pos[0]), err))
		}
		fmt.Fprintf(stdout, "imported %d entries\n", n)
	}
	return 0
}

// fraudHolds implements `cloak fraud holds [-status S] [-json]`.
func fraudHolds(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	var status string
	fs := newArchiveFlagSet("fraud holds", stderr, &f)
	fs.StringVar(&status, "status", "", "only holds with this `status`: open, released or rejected")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || (status != "" && status != archive.HoldOpen && status != archive.HoldReleased && status != archive.HoldRejected) {
		fmt.Fprintln(stderr, "usage: cloak fraud holds [-status open|released|rejected] [-json]")
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak fraud holds: %v\n", err)
		return 2
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holds, err := s.Holds(ctx, status)
	if err != nil {
		fmt.Fprintf(stderr, "cloak fraud holds: %v\n", err)
		return 1
	}
	if f.json {
		if holds == nil {
			holds = []archive.Hold{}
		}
		return printJSON(stdout, stderr, holds)
	}
	for _, h := range holds {
		var why []string
		for _, m := range h.Matches {
			if m.Kind == "rule" {
				why = append(why, fmt.Sprintf("rule %s (%d)", m.Rule, m.Score))
			} else {
				why = append(why, fmt.Sprintf("%s %s (%d)", m.Type, m.Value, m.Score))
			}
		}
		fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", h.ID, h.Created.Local().Format(time.DateTime), h.Code, h.Status,
			h.Score, h.Minimum, dash(h.Interaction), dash(h.GatewayReference), strings.Join(why, ", "))
	}
	return 0
}

// fraudDecide implements `cloak fraud release|reject ID -comment C`: it
// captures (release) or voids (reject) the hold's authorisation at the
// payment gateway by reference, then marks the hold and audits it. A
// gateway refusal leaves the hold open.
func fraudDecide(status string, args []string, stdout, stderr io.Writer) int {
	verb := map[string]string{archive.HoldReleased: "release", archive.HoldRejected: "reject"}[status]
	var f archiveFlags
	var comment, gateway string
	fs := newArchiveFlagSet("fraud "+verb, stderr, &f)
	fs.StringVar(&comment, "comment", "", "why (required; kept in the hold's notes)")
	fs.StringVar(&gateway, "gateway", "", "payment gateway `URL` (default: flows.endpoints.payment_gateway, else the demo gateway serve started)")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	usage := fmt.Sprintf("usage: cloak fraud %s ID -comment TEXT", verb)
	if len(pos) != 1 || strings.TrimSpace(comment) == "" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(stderr, "cloak fraud %s: %q is not a hold id\n", verb, pos[0])
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "cloak fraud %s: %v\n", verb, err)
		return code
	}
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		return fail(2, err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The same function as the API's release and reject.
	gw := archive.HTTPGateway(func() (string, error) {
		if gateway != "" {
			return gateway, nil
		}
		return gatewayURL(cfg)
	})
	detail, err := s.ResolveHold(ctx, id, status, cliActor(), "local", comment, gw)
	if err != nil {
		return fail(1, err)
	}
	fmt.Fprintln(stdout, detail)
	return 0
}

// fraudHoldManual implements `cloak fraud hold -interaction ID [-payment
// REF] -comment C`: a manual hold (fraud-manual), audited — the API's
// POST /api/fraud/holds.
func fraudHoldManual(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	var interaction, payment, comment string
	fs := newArchiveFlagSet("fraud hold", stderr, &f)
	fs.StringVar(&interaction, "interaction", "", "the interaction `ID` whose payment or order to hold")
	fs.StringVar(&payment, "payment", "", "the payment gateway's `reference` of the payment")
	fs.StringVar(&comment, "comment", "", "why (required)")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || (interaction == "" && payment == "") || strings.TrimSpace(comment) == "" {
		fmt.Fprintln(stderr, "usage: cloak fraud hold -interaction ID [-payment REF] -comment TEXT")
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak fraud hold: %v\n", err)
		return 2
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := s.HoldManually(ctx, interaction, payment, cliActor(), "local", comment)
	if err != nil {
		fmt.Fprintf(stderr, "cloak fraud hold: %v\n", err)
		return 1
	}
	if f.json {
		return printJSON(stdout, stderr, h)
	}
	fmt.Fprintf(stdout, "hold %d %s\n", h.ID, h.Code)
	return 0
}

// fraudComment implements `cloak fraud comment ID -comment C`, audited.
func fraudComment(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	var comment string
	fs := newArchiveFlagSet("fraud comment", stderr, &f)
	fs.StringVar(&comment, "comment", "", "the comment (required)")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || strings.TrimSpace(comment) == "" {
		fmt.Fprintln(stderr, "usage: cloak fraud comment ID -comment TEXT")
		return 2
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(stderr, "cloak fraud comment: %q is not a hold id\n", pos[0])
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak fraud comment: %v\n", err)
		return 2
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CommentOnHold(ctx, id, cliActor(), "local", comment); err != nil {
		fmt.Fprintf(stderr, "cloak fraud comment: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "hold %d: comment added\n", id)
	return 0
}

// gatewayURL is the payment gateway release and reject talk to:
// flows.endpoints.payment_gateway, else the demo gateway serve wrote down.
func gatewayURL(cfg config.Config) (string, error) {
	if u := cfg.Flows.Endpoints["payment_gateway"]; u != "" {
		return u, nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.Data.Dir, server.DemoGatewayURLFile))
	if err != nil {
		return "", fmt.Errorf("no flows.endpoints.payment_gateway and no demo gateway (is serve running?): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
