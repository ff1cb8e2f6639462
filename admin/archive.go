package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/mp3"
	"github.com/cloak-voip/cloak/recstore"
)

// ArchiveOptions configure RegisterArchive.
type ArchiveOptions struct {
	// RecordingsDir is recording.dir (else DATA/recordings): a recording
	// is served or deleted only when its indexed file lies inside it.
	RecordingsDir string
	// Retention is archive.retention, for the purge dry run.
	Retention archive.Retention
	// MP3 configures the encoder of ?format=mp3 downloads (zero: Debian's
	// lame from PATH with mp3's defaults).
	MP3 mp3.Options
}

// store is the recordings' store: the local directory, the one
// implementation there is (docs/SCALE.md says what another needs).
func (o ArchiveOptions) store() recstore.Store { return recstore.Local{Dir: o.RecordingsDir} }

// ErrCrossSite: a request a browser made for another site.
var ErrCrossSite = errors.New("the archive API never answers a cross-site browser request")

// RegisterArchive adds the archive's routes (/api/archive/…) to mux;
// auth.Rules says which role reaches each. Each view of an interaction
// (its data and trace), each recording played or downloaded, each
// deletion, anonymisation and export leaves a signed audit row naming
// the user or token (auth.Principal.Actor) and its address. A browser's
// cross-site request is refused even with credentials (defence in depth
// beside SameSite=Strict and the CSRF token).
func RegisterArchive(mux *auth.Mux, s *archive.Store, o ArchiveOptions) {
	a := archiveAPI{s: s, o: o, mp3Slots: make(chan struct{}, max(runtime.NumCPU()/2, 1))}
	mux.HandleFunc("GET /api/archive/interactions", storeGuard(a.search))
	mux.HandleFunc("GET /api/archive/interactions/{id}", storeGuard(a.show))
	mux.HandleFunc("GET /api/archive/interactions/{id}/recording", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		a.recording(w, r, archive.ActionDownload)
	}))
	mux.HandleFunc("GET /api/archive/interactions/{id}/recording/play", storeGuard(func(w http.ResponseWriter, r *http.Request) {
		a.recording(w, r, archive.ActionPlay)
	}))
	mux.HandleFunc("DELETE /api/archive/interactions/{id}/recording", storeGuard(a.deleteRecording))
	mux.HandleFunc("POST /api/archive/recordings/delete", storeGuard(a.deleteRecordings))
	mux.HandleFunc("POST /api/archive/anonymise", storeGuard(a.anonymise))
	mux.HandleFunc("GET /api/archive/audit", storeGuard(a.audit))
	mux.HandleFunc("GET /api/archive/purge", storeGuard(a.purgeDryRun))
	mux.HandleFunc("GET /api/archive/export", storeGuard(a.export))
}

type archiveAPI struct {
	s *archive.Store
	o ArchiveOptions
	// mp3Slots bounds the MP3 encodings running at once (half the CPUs):
	// a player seeking through an MP3 asks for many ranges, each encoded
	// again, and calls must keep their CPU.
	mp3Slots chan struct{}
}

// actor is who the audit log says acted: the request's user or token.
func actor(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Actor()
	}
	return "api:" + r.RemoteAddr // unreachable: every route needs a principal
}

func address(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func (a archiveAPI) auditRow(ctx context.Context, r *http.Request, action, id, detail string) error {
	_, err := a.s.Audit(ctx, archive.AuditEntry{Actor: actor(r), Action: action, Interaction: id, Address: address(r), Detail: detail})
	return err
}

// errBadQuery is a search parameter that does not parse.
var errBadQuery = errors.New("bad query parameter")

// query reads the search filters, as the CLI's: caller, from, to (a date,
// 2006-01-02T15:04 in the server's local time, or RFC 3339), queue,
// agent, route, data=KEY=VALUE (repeatable), recorded=1, limit, offset,
// after=UNIXMS,ID (keyset paging: the rows after that one, as a search's
// "next" gives it).
func query(v url.Values, maxLimit int) (archive.Query, error) {
	q := archive.Query{Caller: v.Get("caller"), Queue: v.Get("queue"), Agent: v.Get("agent"), Route: v.Get("route")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := v.Get(t.name)
		if s == "" {
			continue
		}
		var ok bool
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
			if tt, err := time.ParseInLocation(layout, s, time.Local); err == nil {
				*t.dst, ok = tt, true
				break
			}
		}
		if !ok {
			return q, fmt.Errorf("%w %s: want 2006-01-02, 2006-01-02T15:04 or RFC 3339", errBadQuery, t.name)
		}
	}
	for _, kv := range v["data"] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return q, fmt.Errorf("%w data: want KEY=VALUE", errBadQuery)
		}
		if q.Data == nil {
			q.Data = map[string]string{}
		}
		q.Data[k] = val
	}
	if r := v.Get("recorded"); r != "" {
		b, err := strconv.ParseBool(r)
		if err != nil {
			return q, fmt.Errorf("%w recorded: want true or false", errBadQuery)
		}
		q.Recorded = b
	}
	if s := v.Get("after"); s != "" {
		c, err := archive.ParseCursor(s)
		if err != nil {
			return q, fmt.Errorf("%w after: want UNIXMS,ID (a search's next)", errBadQuery)
		}
		q.After = &c
	}
	for _, n := range []struct {
		name string
		dst  *int
		max  int
	}{{"limit", &q.Limit, maxLimit}, {"offset", &q.Offset, 1 << 30}} {
		s := v.Get(n.name)
		if s == "" {
			continue
		}
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i > n.max {
			return q, fmt.Errorf("%w %s: want 0 to %d", errBadQuery, n.name, n.max)
		}
		*n.dst = i
	}
	return q, nil
}

func (a archiveAPI) search(w http.ResponseWriter, r *http.Request) {
	q, err := query(r.URL.Query(), 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	total, err := a.s.Count(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	res, err := a.s.Search(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if res == nil {
		res = []archive.Interaction{}
	}
	out := map[string]any{"total": total, "offset": q.Offset, "limit": q.Limit, "interactions": res}
	if len(res) == q.Limit && q.Limit > 0 {
		// The next page by keyset (after=), as deep as the first costs.
		out["next"] = archive.CursorOf(res[len(res)-1]).String()
	}
	writeJSON(w, http.StatusOK, out)
}

// get fetches the path's interaction, answering 404 or 500 itself.
func (a archiveAPI) get(w http.ResponseWriter, r *http.Request) (archive.Interaction, bool) {
	in, err := a.s.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, archive.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
		return in, false
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return in, false
	}
	return in, true
}

// show is one interaction with its data, segments, trace, recording and
// audit: audited as a view before anything is sent, and not sent if the
// audit row cannot be written.
func (a archiveAPI) show(w http.ResponseWriter, r *http.Request) {
	in, ok := a.get(w, r)
	if !ok {
		return
	}
	if err := a.auditRow(r.Context(), r, archive.ActionView, in.ID, ""); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	audit, err := a.s.AuditLog(r.Context(), in.ID, 0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		archive.Interaction
		Audit []archive.AuditEntry `json:"audit"`
	}{in, audit})
}

// errRecordingPath: the index names a file outside the recordings
// directory, or not a regular .wav file.
var errRecordingPath = errors.New("the recording's indexed file is not a WAV inside the recordings directory")

// recording serves the interaction's WAV from the recordings index, with
// Range support (RFC 9110 §14), audited as action (download or play);
// ?format=mp3 serves it encoded as MP3 (package mp3), audited with the
// detail "mp3".
func (a archiveAPI) recording(w http.ResponseWriter, r *http.Request, action string) {
	in, ok := a.get(w, r)
	if !ok {
		return
	}
	rec := in.Recording
	if rec == nil || !rec.DeletedAt.IsZero() || rec.File == "" {
		writeError(w, http.StatusNotFound, archive.ErrNoRecording)
		return
	}
	f, st, err := a.openRecording(r.Context(), rec.File)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			writeError(w, http.StatusNotFound, archive.ErrNoRecording)
			return
		}
		writeError(w, http.StatusForbidden, err)
		return
	}
	defer f.Close()
	var body io.ReadSeeker = f
	ext, ctype, detail := "wav", "audio/wav", ""
	switch format := r.URL.Query().Get("format"); format {
	case "", "wav":
	case "mp3":
		// Encoded whole before the audit row and the first byte: a
		// failure answers a JSON error, never a truncated MP3.
		select {
		case a.mp3Slots <- struct{}{}:
		case <-r.Context().Done():
			writeError(w, http.StatusServiceUnavailable, r.Context().Err())
			return
		}
		var buf bytes.Buffer
		err := mp3.Encode(r.Context(), a.o.MP3, f, st.Size, &buf)
		<-a.mp3Slots
		if err != nil {
			status := http.StatusInternalServerError
			switch {
			case errors.Is(err, mp3.ErrNoEncoder):
				status = http.StatusNotImplemented
			case errors.Is(err, mp3.ErrFormat):
				status = http.StatusUnprocessableEntity
			}
			writeError(w, status, err)
			return
		}
		body, ext, ctype, detail = bytes.NewReader(buf.Bytes()), "mp3", "audio/mpeg", "mp3"
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w format: want wav or mp3", errBadQuery))
		return
	}
	if rg := r.Header.Get("Range"); rg != "" && len(rg) < 200 {
		detail = strings.TrimSpace(detail + " range " + rg)
	}
	if err := a.auditRow(r.Context(), r, action, in.ID, detail); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	disp := "attachment"
	if action == archive.ActionPlay {
		disp = "inline"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", disp+`; filename="`+safeName(in.ID)+`.`+ext+`"`)
	http.ServeContent(w, r, "", st.ModTime, body)
}

// openRecording opens key from the recordings' store only when it names
// a .wav file; the store refuses a key outside it (symbolic links
// resolved on both sides) or not a regular file.
func (a archiveAPI) openRecording(ctx context.Context, key string) (io.ReadSeekCloser, recstore.Info, error) {
	if !strings.EqualFold(filepath.Ext(key), ".wav") {
		return nil, recstore.Info{}, errRecordingPath
	}
	f, info, err := a.o.store().Open(ctx, key)
	if errors.Is(err, recstore.ErrOutside) {
		err = errRecordingPath
	}
	return f, info, err
}

// safeName keeps an id fit for a Content-Disposition filename.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, id)
}

func (a archiveAPI) deleteRecording(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := a.s.DeleteRecording(r.Context(), id, actor(r), address(r), a.o.RecordingsDir)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "recording": "deleted"})
	case errors.Is(err, archive.ErrNoRecording):
		writeError(w, http.StatusNotFound, err)
	default:
		writeError(w, http.StatusConflict, err)
	}
}

// jsonBody decodes r's body (application/json only, at most 64 KiB, no
// unknown field) into v, answering 415, or 400 with usage (never the
// decoder's error, which can echo what the body holds), itself.
func jsonBody(w http.ResponseWriter, r *http.Request, v any, usage string) bool {
	// application/json only: a browser cannot send it cross-origin
	// without a CORS preflight, which this API never grants.
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, errors.New(usage))
		return false
	}
	return true
}

// deleteRecordings deletes the recordings of every interaction a search
// selects (archive.DeleteRecordings): {"caller", "from", "to", "queue",
// "agent", "route", "data": {KEY: VALUE}} as the search's parameters,
// and "dry_run": true to count, or "confirm": N, the count a dry run
// gave. A count that changed meanwhile answers 409 with the new one and
// deletes nothing. Each deletion is audited, and the run once.
func (a archiveAPI) deleteRecordings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Caller string            `json:"caller"`
		From   string            `json:"from"`
		To     string            `json:"to"`
		Queue  string            `json:"queue"`
		Agent  string            `json:"agent"`
		Route  string            `json:"route"`
		Data   map[string]string `json:"data"`
		DryRun bool              `json:"dry_run"`
		// Confirm is a pointer so a missing count is told from 0.
		Confirm *int `json:"confirm"`
	}
	if !jsonBody(w, r, &req, `body must be {"caller", "from", "to", "queue", "agent", "route": "…", "data": {"KEY": "VALUE"}, "dry_run": true | "confirm": N}`) {
		return
	}
	if !req.DryRun && req.Confirm == nil {
		writeError(w, http.StatusBadRequest, errors.New(`body needs "dry_run": true, or "confirm": the number of recordings a dry run selected`))
		return
	}
	v := url.Values{}
	for k, s := range map[string]string{"caller": req.Caller, "from": req.From, "to": req.To, "queue": req.Queue, "agent": req.Agent, "route": req.Route} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for k, s := range req.Data {
		v.Add("data", k+"="+s)
	}
	q, err := query(v, 1)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	o := archive.DeleteSearchOptions{Query: q, DryRun: req.DryRun, RecordingsDir: a.o.RecordingsDir, Actor: actor(r), Address: address(r)}
	if req.Confirm != nil {
		o.Confirm = *req.Confirm
	}
	res, err := a.s.DeleteRecordings(r.Context(), o)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, archive.ErrConfirm):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "matched": res.Matched})
	case errors.Is(err, archive.ErrEmptySearch), errors.Is(err, archive.ErrTooMany):
		writeError(w, http.StatusBadRequest, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func (a archiveAPI) anonymise(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Number           string            `json:"number"`
		Data             map[string]string `json:"data"`
		DeleteRecordings bool              `json:"delete_recordings"`
	}
	// application/json only: a browser cannot send it cross-origin
	// without a CORS preflight, which this API never grants.
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json"))
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || (req.Number == "" && len(req.Data) == 0) {
		writeError(w, http.StatusBadRequest, errors.New(`body must be {"number": "…", "data": {"KEY": "VALUE"}, "delete_recordings": false} with a number or data`))
		return
	}
	ids, err := a.s.Anonymise(r.Context(), archive.AnonymiseOptions{Number: req.Number, Data: req.Data, DeleteRecordings: req.DeleteRecordings,
		RecordingsDir: a.o.RecordingsDir, Actor: actor(r), Address: address(r)})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"changed": len(ids), "interactions": ids})
}

// audit lists the audit log (?id= one interaction's), with verify=1 each
// row's signature checked ("failed" lists the rows that do not verify)
// and the whole chain ("chain": its report, with the first break).
func (a archiveAPI) audit(w http.ResponseWriter, r *http.Request) {
	verify, _ := strconv.ParseBool(r.URL.Query().Get("verify"))
	log, err := a.s.AuditLog(r.Context(), r.URL.Query().Get("id"), 0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	type row struct {
		archive.AuditEntry
		Valid *bool `json:"valid,omitempty"`
	}
	rows := make([]row, len(log))
	failed := []int64{}
	for i, e := range log {
		rows[i].AuditEntry = e
		if verify {
			ok := a.s.Verify(e)
			rows[i].Valid = &ok
			if !ok {
				failed = append(failed, e.ID)
			}
		}
	}
	out := map[string]any{"entries": rows}
	if verify {
		// The chain covers the whole log, whatever ?id= shows.
		chain, err := a.s.VerifyChain(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		out["verified"] = len(failed) == 0 && chain.OK()
		out["failed"] = failed
		out["chain"] = chain
	}
	writeJSON(w, http.StatusOK, out)
}

// purgeDryRun counts what the retention purge would delete now. The API
// never purges: the nightly run and the CLI do.
func (a archiveAPI) purgeDryRun(w http.ResponseWriter, r *http.Request) {
	res, err := a.s.Purge(r.Context(), archive.PurgeOptions{Retention: a.o.Retention, DryRun: true,
		RecordingsDir: a.o.RecordingsDir, Actor: actor(r)})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// export answers the search's interactions as CSV or XLSX (masked
// participant data only), audited as "export" with the row count.
func (a archiveAPI) export(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != archive.FormatCSV && format != archive.FormatXLSX {
		writeError(w, http.StatusBadRequest, archive.ErrFormat)
		return
	}
	q, err := query(r.URL.Query(), archive.MaxExport)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ins, err := a.s.ExportRows(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	// Built whole before anything is sent: an error leaves a JSON error,
	// never a truncated file with a 200.
	var buf bytes.Buffer
	if err := archive.WriteExport(&buf, format, ins); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if err := a.auditRow(r.Context(), r, archive.ActionExport, "", fmt.Sprintf("%s %d rows", format, len(ins))); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	ct := "text/csv; charset=utf-8"
	if format == archive.FormatXLSX {
		ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="cloak-archive.`+format+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// storeGuard wraps a handler of the archive's and the fraud holds' routes:
// a signed-in caller (Guard has checked the permission), no cross-site
// browser request even with credentials (defence in depth beside
// SameSite=Strict and the CSRF token), and nothing cached.
func storeGuard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := principal(w, r); !ok {
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeError(w, http.StatusForbidden, ErrCrossSite)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	}
}
