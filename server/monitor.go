package server

import (
	"context"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/auth"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
)

// monitorConfig is call.Config.Monitor from monitor.*,
// queues[].supervisors, features.monitor_code and agents[].user; every monitoring action goes to the archive's
// audit log when there is one (the call layer logs each anyway).
func monitorConfig(cfg config.Config, arch *nodeArchive) call.MonitorConfig {
	sup := map[string][]string{}
	for _, q := range cfg.Queues {
		if len(q.Supervisors) > 0 {
			sup[q.Name] = q.Supervisors
		}
	}
	users := map[string]string{} // a dial-in's SIP user -> the user it monitors as
	for _, a := range cfg.Agents {
		if a.User != "" {
			users[a.Name] = a.User
		}
	}
	return call.MonitorConfig{MaxPerCall: cfg.Monitor.MaxPerCall, Beep: cfg.Monitor.Beep,
		RingTimeout: cfg.Monitor.RingTimeout, Supervisors: sup, OnAudit: arch.monitorAudit(),
		DialCode: cfg.Features.MonitorCode, Users: users, MayMonitor: arch.mayMonitor}
}

// monitorAudit writes monitoring actions to the audit log, off the
// acting goroutine (which may be a media reader's: a supervisor's key);
// nil when the archive is off.
func (a *nodeArchive) monitorAudit() func(call.MonitorAudit) {
	if a.store == nil {
		return nil
	}
	return func(m call.MonitorAudit) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := a.store.Audit(ctx, archive.AuditEntry{At: m.At, Actor: "supervisor:" + m.Supervisor, Action: m.Action,
				Interaction: m.Call, Detail: "monitor=" + m.Monitor + " mode=" + m.Mode + " via=" + m.Via})
			if err != nil {
				a.log.Error().Err(err).Str("call", m.Call).Str("action", m.Action).Msg("monitor audit row not written")
			}
		}()
	}
}

// mayMonitor is call.MonitorConfig.MayMonitor: a dial-in's user must be
// an enabled API user whose role grants calls.monitor (supervisor,
// admin), as the monitor routes ask of a signed-in caller. No user
// store yet (before the API's start, or admin.listen off): no.
func (a *nodeArchive) mayMonitor(user string) bool {
	st := a.users.Load()
	if st == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := st.UserByName(ctx, user)
	if err != nil || u.Disabled {
		return false
	}
	role, err := auth.ParseRole(u.Role)
	return err == nil && auth.Grant(role, auth.PermMonitor) != auth.None
}
