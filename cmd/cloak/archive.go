package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/cluster"
	"github.com/cloak-voip/cloak/config"
)

const archiveUsage = `usage: cloak archive <command> [flags]

commands (each takes -config FILE and -data DIR, as serve does):
  search [-caller NUM] [-from T] [-to T] [-queue Q] [-agent A] [-route R]
         [-data KEY=VALUE]... [-recorded] [-limit N] [-json]
                      interactions, newest first; T is 2006-01-02,
                      2006-01-02T15:04 (local time) or RFC 3339
  show ID [-json]     one interaction: general information, participant
                      data, secure segments, trace, recording, each leg's
                      call quality, audit
                      (audited as a view)
  audit [-id ID] [-verify] [-json]
                      the audit log; -verify checks every row's signature
                      and the chain (a deleted, inserted or moved row), and
                      exits 1 naming the first row that fails
  purge [-dry-run] [-json]
                      delete what archive.retention says has expired
                      (recording files too); audited as one summary row
  reindex             add the interactions of recordings the archive lacks
                      (from their sidecars)
  delete-recording ID...
                      delete recordings (WAV and sidecar), keep the general
                      information; each deletion audited
  delete-recording -search [search flags] -dry-run | -confirm N
                      the same for every recording the search selects: the
                      dry run prints N, -confirm N deletes them if the count
                      is still N (batched; each audited, and the run once)
  anonymise -number NUM [-data KEY=VALUE]... [-delete-recordings]
                      make a person unfindable: the number and matching
                      participant data become "anonymised"; prints how many
                      interactions changed
  export -format csv|xlsx -o FILE [search flags]
                      the search's interactions as a spreadsheet, participant
                      data masked (kept values too); audited with the row
                      count`

// runArchive implements `cloak archive …`. Exit status: 0 done, 1 not
// found / verification failed / database error, 2 usage or configuration.
func runArchive(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, archiveUsage)
		return 2
	}
	switch args[0] {
	case "search":
		return archiveSearch(args[1:], stdout, stderr)
	case "show":
		return archiveShow(args[1:], stdout, stderr)
	case "audit":
		return archiveAudit(args[1:], stdout, stderr)
	case "purge":
		return archivePurge(args[1:], stdout, stderr)
	case "reindex":
		return archiveReindex(args[1:], stdout, stderr)
	case "delete-recording":
		return archiveDeleteRecording(args[1:], stdout, stderr)
	case "anonymise", "anonymize":
		return archiveAnonymise(args[1:], stdout, stderr)
	case "export":
		return archiveExport(args[1:], stdout, stderr)
	case "dev-generate": // hidden: test archives only
		return archiveDevGenerate(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, archiveUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "cloak archive: unknown command %q\n", args[0])
		fmt.Fprintln(stderr, archiveUsage)
		return 2
	}
}

// archiveFlags are the flags every archive command shares.
type archiveFlags struct {
	config, data string
	json         bool
}

func newArchiveFlagSet(name string, stderr io.Writer, f *archiveFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("cloak archive "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (default: embedded defaults), as serve")
	fs.StringVar(&f.data, "data", "", "data `DIR` (overrides data.dir), as serve; on search, KEY=VALUE is a participant-data condition instead")
	fs.StringVar(&f.data, "data-dir", "", "data `DIR`, unambiguously")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	return fs
}

// parseArchiveFlags parses args, allowing flags after positional
// arguments ("show ID -json"), and returns the positional ones.
func parseArchiveFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// openArchive opens the archive serve uses with the same configuration.
// It creates nothing: no key or SQLite file means serve never ran there.
func openArchive(f archiveFlags) (*archive.Store, error) {
	s, _, err := openArchiveConfig(f)
	return s, err
}

// openArchiveConfig is openArchive that returns the configuration too.
func openArchiveConfig(f archiveFlags) (*archive.Store, config.Config, error) {
	cfg, err := loadConfig(serveFlags{config: f.config, data: f.data})
	if err != nil {
		return nil, cfg, err
	}
	s, err := openArchiveWith(cfg)
	return s, cfg, err
}

func openArchiveWith(cfg config.Config) (*archive.Store, error) {
	if !cfg.Archive.Enabled {
		return nil, errors.New("archive.enabled is false in this configuration")
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, false)
	if err != nil {
		return nil, fmt.Errorf("%w (has cloak serve run with this configuration and data dir?)", err)
	}
	if config.ArchiveEngine(o.DSN) == archive.SQLite {
		if _, err := os.Stat(strings.TrimPrefix(o.DSN, "sqlite:")); err != nil {
			return nil, fmt.Errorf("no archive at %s (has cloak serve run with this configuration and data dir?)", o.DSN)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return archive.Open(ctx, o)
}

// cliActor is who the audit log says acted: cli:<OS user>.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid%d", os.Getuid())
}

// parseTime reads -from / -to: a date, a local date and time, or RFC 3339.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want 2006-01-02, 2006-01-02T15:04 or RFC 3339", s)
}

// searchData is search's -data: serve's -data DIR and the issue's
// -data KEY=VALUE share the name, so a value KEY=VALUE (an "=" with no
// path separator before it) is a participant-data condition
// (repeatable) and anything else the data directory. -data-dir names
// the directory unambiguously.
type searchData struct {
	dir  *string
	cond map[string]string
}

func (d searchData) String() string { return "" }
func (d searchData) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.ContainsRune(k, os.PathSeparator) {
		*d.dir = s
		return nil
	}
	if k == "" {
		return fmt.Errorf("want KEY=VALUE or a directory")
	}
	d.cond[k] = v
	return nil
}

// searchFlags are search's filters, shared with export.
type searchFlags struct {
	q        archive.Query
	from, to string
	data     searchData
}

// addSearchFlags adds the search filters to fs (-data is both the data
// directory and a participant-data condition, see searchData).
func addSearchFlags(fs *flag.FlagSet, f *archiveFlags, sf *searchFlags, limit int) {
	sf.data = searchData{dir: &f.data, cond: map[string]string{}}
	fs.StringVar(&sf.q.Caller, "caller", "", "caller `number` (exact)")
	fs.StringVar(&sf.from, "from", "", "offered at or after `T`")
	fs.StringVar(&sf.to, "to", "", "offered before `T`")
	fs.StringVar(&sf.q.Queue, "queue", "", "`queue` name")
	fs.StringVar(&sf.q.Agent, "agent", "", "`agent` name")
	fs.StringVar(&sf.q.Route, "route", "", "`route` (flow:main, echo, …)")
	fs.Lookup("data").Usage = "participant data `KEY=VALUE` (exact; finds masked values too; repeatable), or the data DIR as serve"
	fs.Lookup("data").Value = sf.data
	fs.BoolVar(&sf.q.Recorded, "recorded", false, "only interactions whose recording is kept")
	fs.IntVar(&sf.q.Limit, "limit", limit, "at most `N` results")
}

// query checks the parsed filters and returns the Query.
func (sf *searchFlags) query(cmd string, stderr io.Writer) (archive.Query, bool) {
	q := sf.q
	for _, t := range []struct {
		s   string
		dst *time.Time
		fl  string
	}{{sf.from, &q.From, "-from"}, {sf.to, &q.To, "-to"}} {
		if t.s == "" {
			continue
		}
		var err error
		if *t.dst, err = parseTime(t.s); err != nil {
			fmt.Fprintf(stderr, "cloak archive %s: %s %v\n", cmd, t.fl, err)
			return q, false
		}
	}
	if q.Limit < 1 || q.Limit > archive.MaxExport {
		fmt.Fprintf(stderr, "cloak archive %s: -limit: want 1 to %d\n", cmd, archive.MaxExport)
		return q, false
	}
	q.Data = sf.data.cond
	return q, true
}

func archiveSearch(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("search", stderr, &f)
	var sf searchFlags
	addSearchFlags(fs, &f, &sf, 100)
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "cloak archive search: unexpected argument %q\n", pos[0])
		return 2
	}
	q, ok := sf.query("search", stderr)
	if !ok {
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive search: %v\n", err)
		return 2
	}
	defer s.Close()
	res, err := s.Search(context.Background(), q)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive search: %v\n", err)
		return 1
	}
	if f.json {
		if res == nil {
			res = []archive.Interaction{}
		}
		return printJSON(stdout, stderr, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOFFERED\tCALLER\tCALLED\tROUTE\tQUEUE\tAGENT\tWAIT\tTALK\tENDED BY")
	for _, in := range res {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Offered.Local().Format("2006-01-02 15:04:05"),
			in.Caller, in.Called, in.Route, dash(in.Queue), dash(in.Agent), in.Wait.Round(time.Second), in.Talk.Round(time.Second), in.EndedBy)
	}
	tw.Flush()
	fmt.Fprintf(stderr, "%d interaction(s)\n", len(res))
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "cloak archive: %v\n", err)
		return 1
	}
	return 0
}

func archiveShow(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("show", stderr, &f)
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: cloak archive show ID [-json]")
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive show: %v\n", err)
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	in, err := s.Get(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive show: %v\n", err)
		return 1
	}
	// A view shows participant data and the trace: audited before it is
	// printed, and not printed if it cannot be audited.
	if _, err := s.Audit(ctx, archive.AuditEntry{Actor: cliActor(), Action: archive.ActionView, Interaction: in.ID, Address: "local"}); err != nil {
		fmt.Fprintf(stderr, "cloak archive show: %v\n", err)
		return 1
	}
	audit, err := s.AuditLog(ctx, in.ID, 0)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive show: %v\n", err)
		return 1
	}
	if f.json {
		return printJSON(stdout, stderr, struct {
			archive.Interaction
			Audit []archive.AuditEntry `json:"audit"`
		}{in, audit})
	}
	w := stdout
	fmt.Fprintf(w, "interaction %s  (SIP Call-ID %s, node %s)\n", in.ID, in.SIPCallID, dash(in.Node))
	fmt.Fprintf(w, "  caller %s  called %s  route %s  queue %s  agent %s\n", in.Caller, in.Called, in.Route, dash(in.Queue), dash(in.Agent))
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"offered", in.Offered}, {"answered", in.Answered}, {"queued", in.Queued}, {"agent answered", in.AgentAnswered}, {"ended", in.Ended}} {
		if !t.at.IsZero() {
			fmt.Fprintf(w, "  %-15s %s\n", t.name, t.at.Local().Format("2006-01-02 15:04:05.000"))
		}
	}
	fmt.Fprintf(w, "  wait %s  talk %s  ended by %s (%s)  consent %s\n", in.Wait, in.Talk, in.EndedBy, in.EndReason, in.Consent)
	if len(in.Data) > 0 {
		fmt.Fprintln(w, "participant data:")
		for _, d := range in.Data {
			fmt.Fprintf(w, "  %s = %s  (%s)\n", d.Key, d.Value, d.Policy)
		}
	}
	for _, g := range in.Segments {
		keys := make([]string, 0, len(g.Outputs))
		for k := range g.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var outs []string
		for _, k := range keys {
			outs = append(outs, k+"="+g.Outputs[k])
		}
		fmt.Fprintf(w, "secure segment %s (%s) %s – %s  %s\n", g.Flow, g.Kind, g.Start.Local().Format("15:04:05"),
			g.End.Local().Format("15:04:05"), strings.Join(outs, " "))
	}
	if len(in.Trace) > 0 {
		fmt.Fprintln(w, "trace:")
		for _, st := range in.Trace {
			sec := ""
			if st.Secure {
				sec = " [secure]"
			}
			fmt.Fprintf(w, "  %s %s/%s %s → %s %s%s\n", st.At.Local().Format("15:04:05.000"), st.Flow, st.Step, st.Action, dash(st.Branch), st.Detail, sec)
		}
	}
	if r := in.Recording; r != nil {
		fmt.Fprintf(w, "recording %s  %s  sha256 %s  %s\n", r.File, r.Duration, r.SHA256, dash(r.Status))
	}
	for _, q := range in.Quality {
		rtt := "-"
		if q.RTTMs >= 0 {
			rtt = fmt.Sprintf("%.1fms", q.RTTMs)
		}
		leg := q.Leg
		if q.Agent != "" {
			leg += " " + q.Agent
		}
		fmt.Fprintf(w, "quality %s  received %d lost %d (%.2f%%)  jitter %.1fms  rtt %s  MOS %.2f  peer loss %.2f%% jitter %.1fms  stale %d\n",
			leg, q.Received, q.Lost, q.LossPct, q.JitterMs, rtt, q.MOS, q.PeerLossPct, q.PeerJitterMs, q.DroppedStale)
	}
	fmt.Fprintln(w, "audit:")
	for _, e := range audit {
		fmt.Fprintf(w, "  #%d %s %s %s from %s\n", e.ID, e.At.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, dash(e.Address))
	}
	return 0
}

func archiveAudit(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("audit", stderr, &f)
	id := fs.String("id", "", "only the rows of interaction `ID`")
	verify := fs.Bool("verify", false, "check every row's HMAC and the chain (a deleted, inserted or moved row); exit 1 if either fails")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "cloak archive audit: unexpected argument %q\n", pos[0])
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive audit: %v\n", err)
		return 2
	}
	defer s.Close()
	log, err := s.AuditLog(context.Background(), *id, 0)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive audit: %v\n", err)
		return 1
	}
	type row struct {
		archive.AuditEntry
		Valid *bool `json:"valid,omitempty"`
	}
	rows := make([]row, len(log))
	var bad []int64
	for i, e := range log {
		rows[i].AuditEntry = e
		if *verify {
			ok := s.Verify(e)
			rows[i].Valid = &ok
			if !ok {
				bad = append(bad, e.ID)
			}
		}
	}
	var chain archive.ChainReport
	if *verify {
		// The chain covers the whole log, whatever -id shows.
		if chain, err = s.VerifyChain(context.Background()); err != nil {
			fmt.Fprintf(stderr, "cloak archive audit: %v\n", err)
			return 1
		}
	}
	code := 0
	if len(bad) > 0 || chain.Break != nil {
		code = 1
	}
	if f.json {
		if c := printJSON(stdout, stderr, rows); c != 0 {
			return c
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tINTERACTION\tFROM\tDETAIL")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.At.Local().Format("2006-01-02 15:04:05"), r.Actor, r.Action,
				dash(r.Interaction), dash(r.Address), dash(r.Detail))
		}
		tw.Flush()
	}
	if *verify {
		if len(bad) > 0 {
			fmt.Fprintf(stderr, "cloak archive audit: %d of %d row(s) FAIL verification (edited or not signed with this key): ids %v\n", len(bad), len(rows), bad)
		} else {
			fmt.Fprintf(stderr, "cloak archive audit: %d row(s) verified\n", len(rows))
		}
		if b := chain.Break; b != nil {
			fmt.Fprintf(stderr, "cloak archive audit: chain BROKEN at seq %d (row id %d): %s\n", b.Seq, b.ID, b.Reason)
		} else {
			fmt.Fprintf(stderr, "cloak archive audit: chain holds: %d chained row(s) (%d redacted by the purge), seq %d–%d, %d row(s) from before the chain\n",
				chain.Chained, chain.Redacted, chain.FirstSeq, chain.HeadSeq, chain.Legacy)
		}
	}
	return code
}

func archivePurge(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("purge", stderr, &f)
	dry := fs.Bool("dry-run", false, "count what would be deleted, delete nothing")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "cloak archive purge: unexpected argument %q\n", pos[0])
		return 2
	}
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive purge: %v\n", err)
		return 2
	}
	defer s.Close()
	var ret archive.Retention
	r := cfg.Archive.Retention
	for _, x := range []struct {
		s   string
		dst *time.Duration
	}{{r.Interactions, &ret.Interactions}, {r.Recordings, &ret.Recordings}, {r.ParticipantData, &ret.ParticipantData}, {r.Traces, &ret.Traces}} {
		*x.dst, _ = config.ParseRetention(x.s) // validated by loadConfig
	}
	recDir := recordingsDir(cfg)
	res, err := s.Purge(context.Background(), archive.PurgeOptions{Retention: ret, DryRun: *dry, RecordingsDir: recDir, Actor: cliActor(), Exclusive: !*dry})
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive purge: %v\n", err)
		return 1
	}
	if f.json {
		return printJSON(stdout, stderr, res)
	}
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	fmt.Fprintf(stdout, "%s: %d interaction(s), %d recording(s), %d participant-data row(s), %d trace step(s)\n",
		verb, res.Interactions, res.Recordings, res.ParticipantData, res.Traces)
	if res.FilesKept > 0 {
		fmt.Fprintf(stdout, "kept %d recording(s) whose files lie outside %s or could not be removed\n", res.FilesKept, recDir)
	}
	return 0
}

// recordingsDir is recording.dir, or DATA/recordings.
func recordingsDir(cfg config.Config) string {
	if cfg.Recording.Dir != "" {
		return cfg.Recording.Dir
	}
	return filepath.Join(cfg.Data.Dir, "recordings")
}

func archiveReindex(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("reindex", stderr, &f)
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "cloak archive reindex: unexpected argument %q\n", pos[0])
		return 2
	}
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive reindex: %v\n", err)
		return 2
	}
	defer s.Close()
	// Recordings that ended in the last minute may belong to calls whose
	// summary a running serve is still writing: those are left to it.
	// Each sidecar to be indexed is verified under the recording key;
	// one that fails is indexed marked unverified and reported here.
	keyFile := cfg.Recording.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Data.Dir, "recording.key")
	}
	key, kerr := archive.ReadSidecarKey(keyFile)
	if kerr != nil {
		fmt.Fprintf(stderr, "cloak archive reindex: %v: no sidecar can be verified\n", kerr)
	}
	ro := archive.ReindexOptions{
		Before: time.Now().Add(-time.Minute), SidecarKey: key,
		OnUnverified: func(wav string, err error) {
			fmt.Fprintf(stderr, "cloak archive reindex: UNVERIFIED %s: %v (indexed with recording status %q)\n", wav, err, archive.StatusUnverified)
		}}
	if cfg.Cluster.Enabled { // as serve does at start: node-lost calls get their recordings
		ro.Link = []string{cluster.EndReason}
	}
	res, err := s.Reindex(context.Background(), recordingsDir(cfg), ro)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive reindex: %v\n", err)
		return 1
	}
	if f.json {
		return printJSON(stdout, stderr, res)
	}
	fmt.Fprintf(stdout, "%d recording(s) seen, %d interaction(s) added (%d with a sidecar that does not verify), %d without a readable sidecar, %d linked to node-lost calls (%d not verified)\n",
		res.Recordings, res.Added, res.Unverified, res.Unreadable, res.Linked, res.LinkedUnverified)
	return 0
}

func archiveDeleteRecording(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("delete-recording", stderr, &f)
	var sf searchFlags
	addSearchFlags(fs, &f, &sf, 1)
	var search, dry bool
	confirm := -1
	fs.BoolVar(&search, "search", false, "delete the recordings of every interaction the search flags select (batched, each audited)")
	fs.BoolVar(&dry, "dry-run", false, "with -search: print how many recordings it selects, delete nothing")
	fs.IntVar(&confirm, "confirm", -1, "with -search: the `N` recordings the dry run printed (nothing is deleted if the count changed)")
	ids, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	const usage = "usage: cloak archive delete-recording ID...\n       cloak archive delete-recording -search [search flags] -dry-run | -confirm N"
	if search != (len(ids) == 0) || (search && !dry && confirm < 0) {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var q archive.Query
	if search {
		var ok bool
		if q, ok = sf.query("delete-recording", stderr); !ok {
			return 2
		}
	}
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive delete-recording: %v\n", err)
		return 2
	}
	defer s.Close()
	if search {
		return deleteSearchRecordings(s, archive.DeleteSearchOptions{Query: q, DryRun: dry, Confirm: confirm,
			RecordingsDir: recordingsDir(cfg), Actor: cliActor(), Address: "local"}, f.json, stdout, stderr)
	}
	code := 0
	for _, id := range ids {
		if err := s.DeleteRecording(context.Background(), id, cliActor(), "local", recordingsDir(cfg)); err != nil {
			fmt.Fprintf(stderr, "cloak archive delete-recording: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: recording deleted\n", id)
	}
	return code
}

// deleteSearchRecordings runs delete-recording -search. Exit status 1
// when the count changed since the dry run, or a recording could not be
// deleted.
func deleteSearchRecordings(s *archive.Store, o archive.DeleteSearchOptions, asJSON bool, stdout, stderr io.Writer) int {
	res, err := s.DeleteRecordings(context.Background(), o)
	switch {
	case errors.Is(err, archive.ErrEmptySearch), errors.Is(err, archive.ErrTooMany):
		fmt.Fprintf(stderr, "cloak archive delete-recording: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "cloak archive delete-recording: %v\n", err)
		return 1
	}
	if asJSON {
		if code := printJSON(stdout, stderr, res); code != 0 {
			return code
		}
	} else if o.DryRun {
		fmt.Fprintf(stdout, "%d recording(s) selected; delete them with -confirm %d\n", res.Matched, res.Matched)
	} else {
		for _, id := range res.Failed {
			fmt.Fprintf(stderr, "cloak archive delete-recording: %s: its files are outside the recordings directory or could not be removed\n", id)
		}
		fmt.Fprintf(stdout, "%d recording(s) deleted, %d failed\n", res.Deleted, len(res.Failed))
	}
	if len(res.Failed) > 0 {
		return 1
	}
	return 0
}

func archiveAnonymise(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("anonymise", stderr, &f)
	var o archive.AnonymiseOptions
	data := searchData{dir: &f.data, cond: map[string]string{}}
	fs.StringVar(&o.Number, "number", "", "the person's phone `number` (caller or called, exact)")
	fs.Lookup("data").Usage = "participant data `KEY=VALUE` of the person (exact; repeatable), or the data DIR as serve"
	fs.Lookup("data").Value = data
	fs.BoolVar(&o.DeleteRecordings, "delete-recordings", false, "delete their recordings too")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || (o.Number == "" && len(data.cond) == 0) {
		fmt.Fprintln(stderr, "usage: cloak archive anonymise -number NUM [-data KEY=VALUE]... [-delete-recordings]")
		return 2
	}
	o.Data = data.cond
	s, cfg, err := openArchiveConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive anonymise: %v\n", err)
		return 2
	}
	defer s.Close()
	o.Actor, o.Address, o.RecordingsDir = cliActor(), "local", recordingsDir(cfg)
	ids, err := s.Anonymise(context.Background(), o)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive anonymise: %v\n", err)
		return 1
	}
	if f.json {
		return printJSON(stdout, stderr, map[string]any{"changed": len(ids), "interactions": ids})
	}
	fmt.Fprintf(stdout, "%d interaction(s) anonymised\n", len(ids))
	return 0
}

func archiveExport(args []string, stdout, stderr io.Writer) int {
	var f archiveFlags
	fs := newArchiveFlagSet("export", stderr, &f)
	var sf searchFlags
	addSearchFlags(fs, &f, &sf, archive.MaxExport)
	format := fs.String("format", "", "`csv` or xlsx")
	out := fs.String("o", "", "output `FILE` (written whole, then renamed into place; mode 0600)")
	pos, err := parseArchiveFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || *out == "" || (*format != archive.FormatCSV && *format != archive.FormatXLSX) {
		fmt.Fprintln(stderr, "usage: cloak archive export -format csv|xlsx -o FILE [search flags]")
		return 2
	}
	q, ok := sf.query("export", stderr)
	if !ok {
		return 2
	}
	s, err := openArchive(f)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive export: %v\n", err)
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	ins, err := s.ExportRows(ctx, q)
	if err != nil {
		fmt.Fprintf(stderr, "cloak archive export: %v\n", err)
		return 1
	}
	if err := writeFileAtomic(*out, func(w io.Writer) error { return archive.WriteExport(w, *format, ins) }, func() error {
		// Audited before the file appears: no export without its row.
		_, err := s.Audit(ctx, archive.AuditEntry{Actor: cliActor(), Action: archive.ActionExport, Address: "local",
			Detail: fmt.Sprintf("%s %d rows", *format, len(ins))})
		return err
	}); err != nil {
		fmt.Fprintf(stderr, "cloak archive export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d interaction(s) exported to %s (participant data masked)\n", len(ins), *out)
	return 0
}

// writeFileAtomic writes path through a temporary file in its directory,
// synced, then (if before succeeds) renamed into place: a crash or full
// disk leaves no file that looks whole but is not.
func writeFileAtomic(path string, write func(io.Writer) error, before func() error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := before(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	return nil
}
