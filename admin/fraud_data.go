package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/fraud"
)

// maxRulesBody bounds PUT /api/fraud/rules (1,000 rules are ~150 KiB).
const maxRulesBody = 4 << 20

// The static fraud data and the rules over HTTP (auth.PermFraudData:
// supervisor, admin), through the archive calls `cloak fraud data` and
// `cloak fraud rules` use, so both normalise, check, audit and announce a
// change alike (archive/fraudchange.go):
//
//	GET    /api/fraud/data?type=&limit=&offset=   {"total": N, "entries": [...]}
//	POST   /api/fraud/data          {"type": T, "value": V, "score": N, "comment": C}
//	DELETE /api/fraud/data?type=T&value=V
//	POST   /api/fraud/data/import   text/csv body (type,value[,score][,comment]), ≤ 64 MiB
//	GET    /api/fraud/rules         {"version": N, "rules": [...]}
//	PUT    /api/fraud/rules         the whole set: a rules document, YAML or JSON
//	GET    /api/fraud/rules/history?limit=
func (f fraudAPI) registerData(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}) {
	mux.HandleFunc("GET /api/fraud/data", storeGuard(f.dataList))
	mux.HandleFunc("POST /api/fraud/data", storeGuard(f.dataAdd))
	mux.HandleFunc("DELETE /api/fraud/data", storeGuard(f.dataRemove))
	mux.HandleFunc("POST /api/fraud/data/import", storeGuard(f.dataImport))
	mux.HandleFunc("GET /api/fraud/rules", storeGuard(f.rulesList))
	mux.HandleFunc("PUT /api/fraud/rules", storeGuard(f.rulesReplace))
	mux.HandleFunc("GET /api/fraud/rules/history", storeGuard(f.rulesHistory))
}

// changer is the request's user and address, for the audit.
func changer(r *http.Request) archive.Changer {
	return archive.Changer{Actor: actor(r), Address: address(r)}
}

// changed tells the node a change was stored (it reloads at once).
func (f fraudAPI) changed() {
	if f.o.OnChange != nil {
		f.o.OnChange()
	}
}

// dataStatus maps a static data error to an HTTP status.
func dataStatus(err error) int {
	switch {
	case errors.Is(err, fraud.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, fraud.ErrType), errors.Is(err, fraud.ErrValue), errors.Is(err, fraud.ErrSecret),
		errors.Is(err, fraud.ErrCSV), errors.Is(err, archive.ErrImport), errors.Is(err, fraud.ErrRule):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeProblems answers status with err's first line as "error" and
// every line of it as "problems" (a CSV's bad lines, the refused rules).
func writeProblems(w http.ResponseWriter, status int, summary string, err error) {
	problems := []string{}
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			problems = append(problems, line)
		}
	}
	writeJSON(w, status, map[string]any{"error": summary, "problems": problems})
}

// queryInt reads an optional integer parameter in [0, hi].
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, hi int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > hi {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s must be an integer from 0 to %d", name, hi))
		return 0, false
	}
	return n, true
}

// dataList answers a page of the entries (limit ≤ 10,000, default 500),
// sorted by type then value, with their total.
func (f fraudAPI) dataList(w http.ResponseWriter, r *http.Request) {
	var t fraud.Type
	if s := r.URL.Query().Get("type"); s != "" {
		var err error
		if t, err = fraud.ParseType(s); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
	}
	limit, ok := queryInt(w, r, "limit", 500, 10_000)
	if !ok {
		return
	}
	offset, ok := queryInt(w, r, "offset", 0, 100_000_000)
	if !ok {
		return
	}
	if limit == 0 {
		limit = 500
	}
	entries, total, err := f.s.ListEntries(r.Context(), t, limit, offset)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if entries == nil {
		entries = []fraud.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "entries": entries})
}

// dataAdd adds (or replaces) one entry, as `cloak fraud data add`.
func (f fraudAPI) dataAdd(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type    string `json:"type"`
		Value   string `json:"value"`
		Score   *int   `json:"score"`
		Comment string `json:"comment"`
	}
	if !fraudBody(w, r, &req, `{"type": T, "value": V, "score": N (optional), "comment": C (optional)}`) {
		return
	}
	if req.Type == "" || req.Value == "" {
		writeError(w, http.StatusBadRequest, errors.New("an entry needs a type and a value"))
		return
	}
	e, err := f.s.AddEntry(r.Context(), f.o.Normaliser, changer(r), fraud.Entry{Type: fraud.Type(req.Type), Value: req.Value, Score: req.Score, Comment: req.Comment})
	if err != nil {
		writeError(w, dataStatus(err), err)
		return
	}
	f.changed()
	writeJSON(w, http.StatusCreated, e)
}

// dataRemove removes one entry, as `cloak fraud data remove`; the value
// is normalised first, so it may be given as it was added.
func (f fraudAPI) dataRemove(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if v.Get("type") == "" || v.Get("value") == "" {
		writeError(w, http.StatusBadRequest, errors.New("give the entry as ?type=T&value=V"))
		return
	}
	e, err := f.s.RemoveEntry(r.Context(), f.o.Normaliser, changer(r), v.Get("type"), v.Get("value"))
	if err != nil {
		writeError(w, dataStatus(err), err)
		return
	}
	f.changed()
	writeJSON(w, http.StatusOK, map[string]any{"removed": e})
}

// dataImport imports a CSV body, all or nothing, as `cloak fraud data
// import`. Only Content-Type text/csv: a browser cannot send that
// cross-origin without a CORS preflight, which this API never grants.
func (f fraudAPI) dataImport(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/csv" {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("Content-Type must be text/csv"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, archive.MaxImportBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("a CSV import is at most %d MiB: split it", archive.MaxImportBytes>>20))
			return
		}
		writeError(w, http.StatusBadRequest, errors.New("CSV body not read"))
		return
	}
	n, err := f.s.ImportEntries(r.Context(), f.o.Normaliser, changer(r), bytes.NewReader(body))
	if err != nil {
		if errors.Is(err, archive.ErrImport) {
			writeProblems(w, http.StatusBadRequest, "nothing imported", err)
			return
		}
		writeError(w, dataStatus(err), err)
		return
	}
	f.changed()
	writeJSON(w, http.StatusOK, map[string]any{"imported": n})
}

// rulesList answers the set and its version, as `cloak fraud rules list`.
func (f fraudAPI) rulesList(w http.ResponseWriter, r *http.Request) {
	v, rules, err := f.s.Rules(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if rules == nil {
		rules = []fraud.Rule{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": v, "rules": rules})
}

// rulesReplace makes the body the whole set, as `cloak fraud rules load`:
// a rules document ("rules: [{name, when, score, comment, disabled}]", in
// YAML or JSON) compiled whole first — a rule refused is named with its
// line and position in the body and nothing is stored.
func (f fraudAPI) rulesReplace(w http.ResponseWriter, r *http.Request) {
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/json", "application/yaml", "application/x-yaml", "text/yaml":
	default:
		writeError(w, http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json or application/yaml"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRulesBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("a rules document is at most %d MiB", maxRulesBody>>20))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, errors.New(`empty body: send the whole set ({"rules": []} removes every rule)`))
		return
	}
	set, err := fraud.ParseRules("request", bytes.NewReader(body))
	if err != nil {
		writeProblems(w, http.StatusBadRequest, "rules refused: the rules in the database are unchanged", err)
		return
	}
	res, err := f.s.ReplaceRulesBy(r.Context(), set.Rules(), changer(r), "api")
	if err != nil {
		writeError(w, dataStatus(err), err)
		return
	}
	if !res.Unchanged() {
		f.changed()
	}
	writeJSON(w, http.StatusOK, res)
}

// rulesHistory answers the rules' changes, newest first (limit ≤ 10,000,
// default 100), as `cloak fraud rules history`.
func (f fraudAPI) rulesHistory(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", 100, 10_000)
	if !ok {
		return
	}
	hist, err := f.s.RulesHistory(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if hist == nil {
		hist = []archive.RuleChange{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": hist})
}
