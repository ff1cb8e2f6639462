package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/sip"
)

// MonitorBackend is what the monitoring routes need of the call layer
// (docs/MONITORING.md). A Backend that also implements it gets them;
// Adapt's does.
//
// Permission (for the users and roles to come): every route here is
// "monitor calls" — supervisor or admin, and only on calls of queues
// listing the supervisor in queues[].supervisors. Until users exist the
// supervisor is named in the request and the call layer checks the
// queue.
type MonitorBackend interface {
	// StartMonitor calls the supervisor's phone and attaches it to the
	// call; it returns the monitor's id once the phone answered.
	StartMonitor(ctx context.Context, callID string, req call.MonitorRequest) (string, error)
	// SetMonitorMode switches a monitor between listen, coach and barge.
	SetMonitorMode(callID, monitorID string, mode call.MonitorMode) error
	// StopMonitor hangs up a monitor leg.
	StopMonitor(callID, monitorID string) error
}

// monitorRoutes adds POST /api/calls/{id}/monitor, PATCH and POST
// /api/calls/{id}/monitor/{mid}, and DELETE /api/calls/{id}/monitor/{mid}.
//
// Every route needs auth.PermMonitor (supervisor, admin). A supervisor
// monitors as themselves: the request's supervisor is their user name,
// and a user-name target must be it (their own phone); an admin may name
// any supervisor. The call layer then checks queues[].supervisors.
func monitorRoutes(mux *auth.Mux, b MonitorBackend) {
	mux.HandleFunc("POST /api/calls/{id}/monitor", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Mode       string `json:"mode"`
			Target     string `json:"target"`
			Supervisor string `json:"supervisor"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Target == "" {
			writeError(w, http.StatusBadRequest, errors.New(`body must be {"mode": "listen|coach|barge", "target": "USER or SIP URI", "supervisor": "NAME (with a URI target)"}`))
			return
		}
		p, ok := principal(w, r)
		if !ok {
			return
		}
		if p.Role != auth.RoleAdmin {
			if req.Supervisor != "" && req.Supervisor != p.Name {
				writeError(w, http.StatusForbidden, errors.New("a supervisor monitors as themselves"))
				return
			}
			req.Supervisor = p.Name
			if t := strings.ToLower(req.Target); !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") && req.Target != p.Name {
				writeError(w, http.StatusForbidden, errors.New("a supervisor monitors on their own phone (their user name) or a SIP URI"))
				return
			}
		}
		if req.Mode == "" {
			req.Mode = "listen"
		}
		mode, err := call.ParseMonitorMode(req.Mode)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		id, err := b.StartMonitor(r.Context(), r.PathValue("id"), call.MonitorRequest{Mode: mode, Target: req.Target, Supervisor: req.Supervisor, Via: "api"})
		if err != nil {
			writeMonitorError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id, "mode": mode.String()})
	})
	setMode := func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Mode string `json:"mode"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, errors.New(`body must be {"mode": "listen|coach|barge"}`))
			return
		}
		mode, err := call.ParseMonitorMode(req.Mode)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if err := b.SetMonitorMode(r.PathValue("id"), r.PathValue("mid"), mode); err != nil {
			writeMonitorError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("mid"), "mode": mode.String()})
	}
	mux.HandleFunc("PATCH /api/calls/{id}/monitor/{mid}", setMode)
	mux.HandleFunc("POST /api/calls/{id}/monitor/{mid}", setMode)
	mux.HandleFunc("DELETE /api/calls/{id}/monitor/{mid}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.StopMonitor(r.PathValue("id"), r.PathValue("mid")); err != nil {
			writeMonitorError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("mid"), "status": "stopped"})
	})
}

// writeMonitorError answers a monitoring error with its status.
func writeMonitorError(w http.ResponseWriter, err error) {
	var de *sip.DialError
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, call.ErrNoMonitor):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, call.ErrNotSupervisor):
		writeError(w, http.StatusForbidden, err)
	case errors.Is(err, call.ErrMonitorLimit), errors.Is(err, call.ErrNotBridged):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, call.ErrMonitorMode), errors.Is(err, call.ErrMonitorTarget), errors.Is(err, call.ErrMonitorSupervise):
		writeError(w, http.StatusBadRequest, err)
	case errors.As(err, &de):
		writeError(w, http.StatusBadGateway, errors.New("the supervisor's phone did not answer: "+de.Error()))
	default:
		writeError(w, http.StatusBadGateway, err)
	}
}

func (b managerBackend) StartMonitor(ctx context.Context, id string, req call.MonitorRequest) (string, error) {
	c, ok := b.m.Call(id)
	if !ok {
		return "", ErrNotFound
	}
	return c.StartMonitor(ctx, req)
}

func (b managerBackend) SetMonitorMode(id, mid string, mode call.MonitorMode) error {
	c, ok := b.m.Call(id)
	if !ok {
		return ErrNotFound
	}
	return c.SetMonitorMode(mid, mode, "api")
}

func (b managerBackend) StopMonitor(id, mid string) error {
	c, ok := b.m.Call(id)
	if !ok {
		return ErrNotFound
	}
	return c.StopMonitor(mid, "api")
}
