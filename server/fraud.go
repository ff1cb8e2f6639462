package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/archive"
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/fraud"
	"github.com/cloak-voip/cloak/ivr"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// fraudReload is how often a node looks for changed static fraud data
// (entries added or removed by `cloak fraud data`, the API or another
// node) and changed rules (`cloak fraud rules load`, PUT
// /api/fraud/rules): a change applies within it. On PostgreSQL a
// notification (listen) applies it at once; the poll is the fallback.
// A variable for tests, read by fraudSetup only.
var fraudReload = 5 * time.Second

// nodeFraud is the node's payment and call screening: fraud.Screener over
// the archive's static data and rules, holds into the archive.
type nodeFraud struct {
	screener *fraud.Screener
	// callMinimum is fraud.call.minimum_score, what an arrival is judged
	// against; screenCalls is fraud.call.enabled.
	callMinimum int
	screenCalls bool
	store       *archive.Store
	node        string
	log         zerolog.Logger
	defaults    map[fraud.Type]int
	tokenKey    []byte
	version     string // the static data's version loaded (archive.FraudVersion)
	// rulesVersion is the version of the database's rules last applied
	// or refused (a refused version is not retried; the next change is).
	rulesVersion int64
	norm         fraud.Normaliser
	velocity     fraudVelocityLog
	// kick wakes watch for a reload now: a change through this node's
	// API, or a notification on archive.FraudChannel (PostgreSQL).
	kick chan struct{}
	// poll is fraudReload when the node started.
	poll time.Duration
}

// changed asks watch to reload at once (never blocks: one pending kick
// covers any number of changes).
func (f *nodeFraud) changed() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// fraudVelocityLog logs a velocity write failure once per incident.
type fraudVelocityLog struct {
	mu     sync.Mutex
	failed bool
}

// fraudDBTimeout bounds the velocity lookups and writes of a screening: a
// slow archive makes velocity 0 (velocity_error), never a stuck flow.
const fraudDBTimeout = 2 * time.Second

// Screen implements ivr.Screener.
func (f *nodeFraud) Screen(ctx context.Context, a fraud.Attributes) (fraud.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, fraudDBTimeout)
	defer cancel()
	d, err := f.screener.Screen(ctx, a)
	if err == nil {
		// Names the decision, never a value of the call.
		f.log.Info().Int("score", d.Score).Int("minimum", d.Minimum).Bool("hold", d.Hold).Int("matches", len(d.Matches)).Msg("payment screened")
	}
	return d, err
}

// ScreenArrival implements call.ArrivalScreener: the arrival is recorded
// in the velocity table first (so this call counts in its own
// calls_today), then, when fraud.call.enabled, screened and judged
// against fraud.call.minimum_score. A failed record is logged once per
// incident and the screening goes on (calls_today undercounts).
func (f *nodeFraud) ScreenArrival(ctx context.Context, a fraud.Attributes, interaction string) (fraud.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, fraudDBTimeout)
	defer cancel()
	if a.Caller != "" {
		if caller, err := f.norm.Phone(a.Caller); err == nil {
			f.velocity.note(f.log, f.store.RecordArrival(ctx, a.Time, caller, interaction), "call arrival")
		}
	}
	if !f.screenCalls {
		return fraud.Decision{}, nil
	}
	d, err := f.screener.Screen(ctx, a)
	if err != nil {
		return d, err
	}
	return d.Against(f.callMinimum), nil
}

// note logs the first failure of a velocity write of an incident, and the
// recovery.
func (v *fraudVelocityLog) note(log zerolog.Logger, err error, what string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case err != nil && !v.failed:
		v.failed = true
		log.Error().Err(err).Str("what", what).Msg("fraud velocity: not recorded (later screenings undercount until the archive answers)")
	case err == nil && v.failed:
		v.failed = false
		log.Info().Msg("fraud velocity: recording again")
	}
}

// RecordPayment implements ivr.PaymentRecorder: the screened payment's
// result goes to the archive's velocity table (caller and customer id as
// tokens, the card as its token), for later screenings' velocity.
func (f *nodeFraud) RecordPayment(ctx context.Context, a fraud.Attributes, interaction string, declined bool) {
	p := archive.VelocityPayment{At: a.Time, Declined: declined, Interaction: interaction}
	if a.Caller != "" {
		p.Caller, _ = f.norm.Phone(a.Caller)
	}
	if v := a.Data[fraud.KeyCustomerID]; v != "" {
		p.Customer, _ = f.norm.CustomerID(v)
	}
	if a.Payment != nil {
		p.CardToken = a.Payment.CardToken
	}
	if p.Caller == "" && p.Customer == "" && p.CardToken == "" {
		return // nothing a later screening could count it by
	}
	ctx, cancel := context.WithTimeout(ctx, fraudDBTimeout)
	defer cancel()
	f.velocity.note(f.log, f.store.RecordPayment(ctx, p), "payment")
}

// arrivalConfig is the call manager's fraud.call: every arrival recorded
// when fraud is on, screened when fraud.call.enabled.
func (f *nodeFraud) arrivalConfig(c config.FraudCall) call.ArrivalConfig {
	if f == nil {
		return call.ArrivalConfig{}
	}
	return call.ArrivalConfig{Screener: f, Screen: c.Enabled, Route: c.Route, Timeout: c.Timeout}
}

// Hold implements ivr.Screener: a fraud-auto hold in the archive.
func (f *nodeFraud) Hold(ctx context.Context, h ivr.Hold) error {
	stored, err := f.store.CreateHold(ctx, archive.Hold{Interaction: h.Interaction, Code: archive.HoldAuto,
		Score: h.Decision.Score, Minimum: h.Decision.Minimum, Matches: h.Decision.Matches,
		GatewayReference: h.Reference, CreatedBy: "node:" + f.node}, "")
	if err != nil {
		return err
	}
	f.log.Info().Int64("hold", stored.ID).Str("interaction", h.Interaction).Msg("payment held for fraud review")
	return nil
}

// fraudSetup builds the screening when fraud.enabled: the archive holds the
// static data and the holds, so it must be enabled too. It returns nil,
// nil when fraud is off.
func fraudSetup(ctx context.Context, cfg config.Config, arch *nodeArchive, log zerolog.Logger) (*nodeFraud, error) {
	if !cfg.Fraud.Enabled {
		return nil, nil
	}
	if arch.store == nil {
		return nil, errors.New("fraud.enabled needs archive.enabled (static data and holds live in the archive)")
	}
	var set fraud.Settings
	set.MinimumScore = cfg.Fraud.MinimumScore
	set.RouteMinimumScores = cfg.Fraud.RouteMinimumScores
	set.DefaultScores = map[fraud.Type]int{}
	for t, v := range cfg.Fraud.DefaultScores {
		set.DefaultScores[fraud.Type(t)] = v
	}
	set.Normaliser = fraud.Normaliser{CountryCode: cfg.Fraud.DefaultCountryCode}
	set.VelocityWindow = cfg.Fraud.VelocityWindow
	// Velocity attributes from the archive's fraud_velocity table.
	set.Velocity = arch.store
	loc, err := time.LoadLocation(cfg.Fraud.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("fraud.time_zone: %w", err)
	}
	set.Location = loc
	if cfg.Fraud.BINTable != "" {
		file, err := os.Open(cfg.Fraud.BINTable)
		if err != nil {
			return nil, fmt.Errorf("fraud.bin_table: %w", err)
		}
		set.BINs, err = fraud.ParseBINTable(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("fraud.bin_table: %w", err)
		}
	}
	// fraud.rules_file must compile (start refused otherwise); it seeds
	// the database's rules once (seedRules), after which the database is
	// what every node screens with.
	var seed *fraud.RuleSet
	if cfg.Fraud.RulesFile != "" {
		if seed, err = fraud.LoadRules(cfg.Fraud.RulesFile); err != nil {
			return nil, fmt.Errorf("fraud.rules_file:\n%w", err)
		}
	}
	o, err := archive.OptionsFrom(cfg.Archive, cfg.Data.Dir, false)
	if err != nil {
		return nil, fmt.Errorf("fraud: card token key: %w", err)
	}
	// The card token's key is derived from the archive key (a file, never
	// in the database beside the tokens), for its own purpose only.
	m := hmac.New(sha256.New, o.Key)
	m.Write([]byte("cloak fraud card token v1"))
	host, _ := os.Hostname()
	nf := &nodeFraud{screener: fraud.NewScreener(set, nil, nil), store: arch.store, node: host, log: log,
		defaults: set.DefaultScores, tokenKey: m.Sum(nil), norm: set.Normaliser,
		callMinimum: cfg.Fraud.Call.MinimumScore, screenCalls: cfg.Fraud.Call.Enabled, kick: make(chan struct{}, 1), poll: fraudReload}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if seed != nil {
		if err := nf.seedRules(lctx, seed, cfg.Fraud.RulesFile); err != nil {
			return nil, fmt.Errorf("fraud.rules_file: %w", err)
		}
	}
	if err := nf.reload(lctx); err != nil {
		return nil, fmt.Errorf("fraud: %w", err)
	}
	arch.fraudChanged = nf.changed
	go nf.watch(ctx)
	if arch.store.Engine() == archive.Postgres {
		go nf.listen(ctx, cfg.Archive.DSN)
	}
	log.Info().Int("rules", nf.screener.RuleCount()).Int64("rules_version", nf.rulesVersion).Int("minimum_score", set.MinimumScore).Bool("call_screening", cfg.Fraud.Call.Enabled).
		Str("call_route", cfg.Fraud.Call.Route).Msg("fraud screening on")
	return nf, nil
}

// seedRules stores the rules file's set in the database when the
// database has never held rules (version 0), as "node:HOST"; otherwise
// the database wins and a file that differs from it is warned about.
// Nodes that seed at once apply one after the other: the second finds
// the set unchanged.
func (f *nodeFraud) seedRules(ctx context.Context, seed *fraud.RuleSet, file string) error {
	v, stored, err := f.store.Rules(ctx)
	if err != nil {
		return err
	}
	if v == 0 {
		res, err := f.store.ReplaceRules(ctx, seed.Rules(), "node:"+f.node, file)
		if err != nil {
			return err
		}
		f.log.Info().Int64("version", res.Version).Int("rules", seed.Len()).Str("file", file).Msg("fraud rules seeded into the database from fraud.rules_file")
		return nil
	}
	if !sameRules(seed.Rules(), stored) {
		f.log.Warn().Str("file", file).Int64("version", v).Msg("fraud.rules_file differs from the rules in the database: the database wins (cloak fraud rules load FILE replaces them)")
	}
	return nil
}

// sameRules reports whether a and b hold the same rules (by name).
func sameRules(a, b []fraud.Rule) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]fraud.Rule{}
	for _, r := range a {
		m[r.Name] = r
	}
	for _, r := range b {
		o, ok := m[r.Name]
		if !ok || o.When != r.When || o.Score != r.Score || o.Comment != r.Comment || o.Disabled != r.Disabled {
			return false
		}
	}
	return true
}

// reloadRules applies the database's rules when their version moved. A
// set that does not compile (a row edited by hand, a newer node's
// attribute) is refused naming the rules, logged once per version, and
// the rules loaded before stay.
func (f *nodeFraud) reloadRules(ctx context.Context) error {
	v, err := f.store.RulesVersion(ctx)
	if err != nil {
		return err
	}
	if v == f.rulesVersion {
		return nil
	}
	v, rules, err := f.store.Rules(ctx)
	if err != nil {
		return err
	}
	f.rulesVersion = v
	set, err := fraud.Compile(fmt.Sprintf("database version %d", v), rules)
	if err != nil {
		f.log.Error().Int64("version", v).Str("refused", err.Error()).Msg("fraud rules in the database refused: screening goes on with the rules loaded before")
		return nil
	}
	f.screener.SetRules(set)
	f.log.Info().Int64("version", v).Int("rules", set.Len()).Msg("fraud rules loaded")
	return nil
}

// reload rebuilds the index when the entries changed since the last
// load, and the rules when theirs did.
func (f *nodeFraud) reload(ctx context.Context) error {
	if err := f.reloadRules(ctx); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	v, err := f.store.FraudVersion(ctx)
	if err != nil {
		return err
	}
	if v == f.version {
		return nil
	}
	entries, err := f.store.All(ctx)
	if err != nil {
		return err
	}
	ix, err := fraud.NewIndex(entries, f.defaults)
	if err != nil {
		return err
	}
	f.screener.SetIndex(ix)
	f.version = v
	f.log.Info().Int("entries", ix.Len()).Msg("fraud static data loaded")
	return nil
}

// watch reloads changed static data and rules every fraudReload, and at
// once when kicked (changed), until ctx ends. It is the only goroutine
// that reloads, so the versions it compares need no lock.
func (f *nodeFraud) watch(ctx context.Context) {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		rctx, cancel := context.WithTimeout(ctx, f.poll)
		if err := f.reload(rctx); err != nil && ctx.Err() == nil {
			f.log.Warn().Err(err).Msg("fraud static data or rules reload failed: screening goes on with what was loaded before")
		}
		cancel()
	}
}

// listen holds a LISTEN connection of its own on archive.FraudChannel
// (PostgreSQL; the CLI, the API and other nodes notify it in the change's
// transaction) and kicks watch on every notification, so a change applies
// on every node in well under a second; the fraudReload poll goes on
// beside it, so a lost connection delays a change by 5 s at most, never
// loses it. A lost connection is logged once per incident and retried
// once a second; after reconnecting it kicks once, for what it missed.
func (f *nodeFraud) listen(ctx context.Context, dsn string) {
	failing := false
	for ctx.Err() == nil {
		err := f.listenOnce(ctx, dsn, &failing)
		if ctx.Err() != nil {
			return
		}
		if !failing {
			f.log.Warn().Err(err).Msg("fraud: LISTEN connection lost; reconnecting (changes apply at the 5 s poll meanwhile)")
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (f *nodeFraud) listenOnce(ctx context.Context, dsn string, failing *bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err) // pgx's errors do not quote the password
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+archive.FraudChannel); err != nil {
		return err
	}
	if *failing {
		f.log.Info().Msg("fraud: LISTEN connection back")
		*failing = false
	}
	f.changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		f.changed()
	}
}
