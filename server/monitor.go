package server

import (
	"context"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
)

// monitorConfig is call.Config.Monitor from monitor.* and
// queues[].supervisors; every monitoring action goes to the archive's
// audit log when there is one (the call layer logs each anyway).
func monitorConfig(cfg config.Config, arch *nodeArchive) call.MonitorConfig {
	sup := map[string][]string{}
	for _, q := range cfg.Queues {
		if len(q.Supervisors) > 0 {
			sup[q.Name] = q.Supervisors
		}
	}
	return call.MonitorConfig{MaxPerCall: cfg.Monitor.MaxPerCall, Beep: cfg.Monitor.Beep,
		RingTimeout: cfg.Monitor.RingTimeout, Supervisors: sup, OnAudit: arch.monitorAudit()}
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
