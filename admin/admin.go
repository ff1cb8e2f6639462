package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/cloak-voip/cloak/acd"
	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
)

// Backend is what the API needs of the call layer; *call.Manager
// implements it through Adapt.
type Backend interface {
	Calls() []call.Info
	Call(id string) (call.Info, []call.Event, bool)
	Secure(id, flow string) error
	Subscribe(id string) (past []call.Event, next <-chan call.Event, cancel func(), ok bool)
	Agents() []acd.AgentInfo
	// Recording pauses ("pause") or resumes ("resume") a call's recording.
	Recording(id, action string) error
	// Stats are the process's counters (calls, SIP, runtime).
	Stats() map[string]any
}

// ErrNotFound is returned by a Backend for an unknown call.
var ErrNotFound = errors.New("no such call")

// Options configures the API.
type Options struct {
	// Pprof mounts Go's profiler under /debug/pprof/. Off by default: a
	// goroutine dump prints function arguments, and one taken while a
	// digit is being handled could show it.
	Pprof bool
	// Auth, when not nil, audits every action on a call with who did it
	// (the archive's signed audit log).
	Auth *auth.Service
}

// ErrNotYourCall: an agent asked about or acted on a call they are not
// the bridged agent of.
var ErrNotYourCall = errors.New("not your call: agents see and act on their own calls only")

// Handler returns the API's routes on a new Mux, unguarded: serve wraps
// the node's Mux in auth.Service.Guard. Every handler but /healthz also
// refuses (401) a request that carries no auth.Principal, so an
// unguarded mux fails closed.
func Handler(b Backend, o Options) *auth.Mux {
	m := auth.NewMux()
	Register(m, b, o)
	return m
}

// principal returns the request's caller, or answers 401.
func principal(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, auth.ErrUnauthenticated)
	}
	return p, ok
}

// ownCall answers 404 for an unknown call and 403 for a call p may not
// touch under perm (an agent's call bridged to someone else), and
// reports whether the handler may go on.
func ownCall(w http.ResponseWriter, r *http.Request, b Backend, perm auth.Perm) (auth.Principal, bool) {
	p, ok := principal(w, r)
	if !ok {
		return p, false
	}
	if p.Scope(perm) == auth.All {
		return p, true
	}
	info, _, found := b.Call(r.PathValue("id"))
	if !found {
		writeError(w, http.StatusNotFound, ErrNotFound)
		return p, false
	}
	if !p.Owns(perm, info.Agent) {
		writeError(w, http.StatusForbidden, ErrNotYourCall)
		return p, false
	}
	return p, true
}

// Register adds the API's routes to mux.
func Register(mux *auth.Mux, b Backend, o Options) {
	audit := func(r *http.Request, p auth.Principal, action, detail string) {
		if o.Auth != nil {
			o.Auth.Audit(r, p, action, r.PathValue("id"), detail)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /api/calls", func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(w, r)
		if !ok {
			return
		}
		calls := b.Calls()
		if p.Scope(auth.PermCallsView) != auth.All {
			own := make([]call.Info, 0, 1)
			for _, c := range calls {
				if p.Owns(auth.PermCallsView, c.Agent) {
					own = append(own, c)
				}
			}
			calls = own
		}
		writeJSON(w, http.StatusOK, calls)
	})
	mux.HandleFunc("GET /api/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, b, auth.PermCallsView); !ok {
			return
		}
		info, evs, ok := b.Call(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, ErrNotFound)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			call.Info
			Events []call.Event `json:"events"`
		}{info, evs})
	})
	mux.HandleFunc("POST /api/calls/{id}/secure", func(w http.ResponseWriter, r *http.Request) {
		p, ok := ownCall(w, r, b, auth.PermCallsAct)
		if !ok {
			return
		}
		var req struct {
			Flow string `json:"flow"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Flow == "" {
			writeError(w, http.StatusBadRequest, errors.New(`body must be {"flow": "NAME"}`))
			return
		}
		err := b.Secure(r.PathValue("id"), req.Flow)
		audit(r, p, archive.ActionCallSecure, auditDetail("flow="+auditSafe(req.Flow), err))
		switch {
		case err == nil:
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "flow": req.Flow})
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, call.ErrSecureActive), errors.Is(err, call.ErrNotBridged):
			writeError(w, http.StatusConflict, err)
		default:
			writeError(w, http.StatusUnprocessableEntity, err)
		}
	})
	mux.HandleFunc("POST /api/calls/{id}/recording/{action}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := ownCall(w, r, b, auth.PermCallsAct)
		if !ok {
			return
		}
		action := r.PathValue("action")
		if action != "pause" && action != "resume" {
			writeError(w, http.StatusNotFound, errors.New("want recording/pause or recording/resume"))
			return
		}
		err := b.Recording(r.PathValue("id"), action)
		audit(r, p, archive.ActionCallRecording, auditDetail(action, err))
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]string{"recording": action + "d"})
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, call.ErrNoRecording):
			writeError(w, http.StatusConflict, err)
		default:
			writeError(w, http.StatusUnprocessableEntity, err)
		}
	})
	mux.HandleFunc("GET /api/calls/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ownCall(w, r, b, auth.PermCallsView); !ok {
			return
		}
		serveEvents(w, r, b)
	})
	if pb, ok := b.(PaymentBackend); ok {
		paymentRoutes(mux, b, pb)
	}
	mux.HandleFunc("GET /api/agents", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := principal(w, r); !ok {
			return
		}
		writeJSON(w, http.StatusOK, b.Agents())
	})
	// /api/stats: counters and the Go runtime's view (goroutines, heap);
	// ?gc=1 collects garbage first so a soak test can compare heaps. Twice:
	// a sync.Pool's contents survive one collection as its victim cache,
	// so after one GC the heap still counts the recorder's pooled frames,
	// as many as happened to be returned since the last cycle — a cache,
	// not a leak, and noise in a comparison of heaps.
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := principal(w, r); !ok {
			return
		}
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
			runtime.GC()
		}
		st := b.Stats()
		if st == nil {
			st = map[string]any{}
		}
		st["goroutines"] = runtime.NumGoroutine()
		for k, v := range runtimeStats() {
			st[k] = v
		}
		writeJSON(w, http.StatusOK, st)
	})
	if mb, ok := b.(MonitorBackend); ok {
		monitorRoutes(mux, mb) // supervisors (monitor.go)
	}
	if o.Pprof {
		signedIn := func(h http.HandlerFunc) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if _, ok := principal(w, r); ok {
					h(w, r)
				}
			}
		}
		mux.HandleFunc("GET /debug/pprof/", signedIn(pprof.Index))
		mux.HandleFunc("GET /debug/pprof/cmdline", signedIn(pprof.Cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", signedIn(pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/symbol", signedIn(pprof.Symbol))
		mux.HandleFunc("GET /debug/pprof/trace", signedIn(pprof.Trace))
	}
}

// runtimeSamples are the runtime/metrics read for /api/stats.
var runtimeSamples = []string{
	"/memory/classes/heap/objects:bytes", // with unused: MemStats.HeapInuse
	"/memory/classes/heap/unused:bytes",
	"/gc/heap/objects:objects",   // MemStats.HeapObjects
	"/gc/cycles/total:gc-cycles", // MemStats.NumGC
}

// runtimeStats returns the heap and GC figures of /api/stats from
// runtime/metrics, which reads them without stopping the world:
// runtime.ReadMemStats stops every goroutine, the relay's poll workers
// included, and a monitoring system or the bench asks once a second.
func runtimeStats() map[string]any {
	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		samples[i].Name = name
	}
	metrics.Read(samples)
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not in this Go release: reported as 0, not a panic
		}
		return samples[i].Value.Uint64()
	}
	return map[string]any{"heap_inuse_bytes": u(0) + u(1), "heap_objects": u(2), "gc_cycles": u(3)}
}

// auditSafe keeps a client-chosen value fit for the audit log: at most
// 64 bytes of letters, digits and "._-" (others become "_"), and no more
// than 4 digits in clear (a hostile client could send a card number as a
// flow name; the audit keeps none).
func auditSafe(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	b := []byte(v)
	digits := 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '_', c == '-':
		default:
			b[i] = '_'
		}
	}
	if digits > 4 {
		for i, c := range b {
			if c >= '0' && c <= '9' {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

// auditDetail is an audit row's detail: what was asked and how it ended
// (the error's text names no digit: call errors are sentinels).
func auditDetail(what string, err error) string {
	if err != nil {
		return what + " refused: " + err.Error()
	}
	return what
}

// serveEvents streams a call's events as Server-Sent Events until the
// client goes away or the call ends; the last event of an ended call is
// "ended" (sent here when the backend closed the stream without it).
func serveEvents(w http.ResponseWriter, r *http.Request, b Backend) {
	past, next, cancel, ok := b.Subscribe(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, ErrNotFound)
		return
	}
	defer cancel()
	fl, canFlush := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if canFlush {
		fl.Flush() // the headers now: a call may have nothing to say yet
	}
	send := func(ev call.Event) bool {
		b, err := json.Marshal(ev)
		if err != nil {
			return true
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b); err != nil {
			return false
		}
		if canFlush {
			fl.Flush()
		}
		return true
	}
	for _, ev := range past {
		if !send(ev) || ev.Type == "ended" {
			return
		}
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-next:
			if !ok {
				// The call ended; its "ended" event was lost to a full
				// buffer (a slow reader), so say it here.
				send(call.Event{Type: "ended", Call: r.PathValue("id"), Time: time.Now()})
				return
			}
			if !send(ev) || ev.Type == "ended" {
				return
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			if canFlush {
				fl.Flush()
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// Adapt makes a *call.Manager a Backend; extra, when not nil, adds
// counters (the SIP server's) to /api/stats.
func Adapt(m *call.Manager, extra func() map[string]any) Backend {
	return managerBackend{m: m, extra: extra}
}

type managerBackend struct {
	m     *call.Manager
	extra func() map[string]any
}

func (b managerBackend) Stats() map[string]any {
	st := map[string]any{"calls_active": b.m.Active()}
	if b.extra != nil {
		for k, v := range b.extra() {
			st[k] = v
		}
	}
	return st
}

func (b managerBackend) Calls() []call.Info {
	calls := b.m.Calls()
	out := make([]call.Info, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.Info())
	}
	return out
}

func (b managerBackend) Call(id string) (call.Info, []call.Event, bool) {
	c, ok := b.m.Call(id)
	if !ok {
		return call.Info{}, nil, false
	}
	return c.Info(), c.Events(), true
}

func (b managerBackend) Secure(id, flow string) error {
	c, ok := b.m.Call(id)
	if !ok {
		return ErrNotFound
	}
	return c.RequestSecure(flow, "api")
}

func (b managerBackend) Subscribe(id string) ([]call.Event, <-chan call.Event, func(), bool) {
	c, ok := b.m.Call(id)
	if !ok {
		return nil, nil, nil, false
	}
	past, ch, cancel := c.Subscribe()
	return past, ch, cancel, true
}

func (b managerBackend) Agents() []acd.AgentInfo {
	if d := b.m.Directory(); d != nil {
		return d.Agents()
	}
	return []acd.AgentInfo{}
}

func (b managerBackend) Recording(id, action string) error {
	c, ok := b.m.Call(id)
	if !ok {
		return ErrNotFound
	}
	if action == "pause" {
		return c.PauseRecording("api")
	}
	return c.ResumeRecording("api")
}
