package archive

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// Fraud rules in the database (migration 00009): the current set in
// fraud_rules, every change in fraud_rule_history, the set's version in
// fraud_rules_head. ReplaceRules is the one writer.

// ActionFraudRules is the audit action of a rules change.
const ActionFraudRules = "fraud_rules"

// Rule change actions in the history.
const (
	RuleAdded   = "added"
	RuleChanged = "changed"
	RuleRemoved = "removed"
)

// RuleChange is one row of the rules' history.
type RuleChange struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	// Source names where the set came from (a file's path).
	Source string `json:"source,omitempty"`
	// Action is RuleAdded, RuleChanged or RuleRemoved.
	Action string `json:"action"`
	// Rule is the rule as it became (removed: as it was).
	Rule fraud.Rule `json:"rule"`
}

// RulesResult says what ReplaceRules did.
type RulesResult struct {
	// Version is the set's version after the change (unchanged: as it
	// was).
	Version int64 `json:"version"`
	// Added, Changed and Removed name the rules, sorted.
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Unchanged reports whether the set was already as given.
func (r RulesResult) Unchanged() bool {
	return len(r.Added)+len(r.Changed)+len(r.Removed) == 0
}

// ReplaceRules makes rules the whole set, in one transaction: every rule
// is compiled first (fraud.Compile: a rule that does not compile, names
// an unknown attribute or holds a card number refuses the whole set,
// naming it — the set in the database stays as it was); then each rule
// added, changed or removed leaves a history row with actor, source and
// time, the version moves by one, and the change is audited. A set equal
// to the stored one changes nothing (no version, no audit). The audit row
// says "local" as the address: the CLI's and a node's seeding.
func (s *Store) ReplaceRules(ctx context.Context, rules []fraud.Rule, actor, source string) (RulesResult, error) {
	return s.ReplaceRulesBy(ctx, rules, Changer{Actor: actor, Address: "local"}, source)
}

// ReplaceRulesBy is ReplaceRules with the change's address (the API's
// caller); a change is announced on FraudChannel on PostgreSQL.
func (s *Store) ReplaceRulesBy(ctx context.Context, rules []fraud.Rule, by Changer, source string) (RulesResult, error) {
	actor := by.Actor
	var res RulesResult
	if _, err := fraud.Compile(source, rules); err != nil {
		return res, err
	}
	if err := s.ensure(ctx); err != nil {
		return res, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("archive: fraud rules: %w", err)
	}
	defer tx.Rollback()
	// Lock the head first: concurrent loads (two CLIs, two nodes) apply
	// one after the other, each against the set the other left.
	if err := tx.QueryRowContext(ctx, `UPDATE fraud_rules_head SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&res.Version); err != nil {
		return res, fmt.Errorf("archive: fraud rules: head: %w", err)
	}
	old, err := loadRules(ctx, tx)
	if err != nil {
		return res, err
	}
	now := time.Now().UnixMilli()
	history := func(action string, r fraud.Rule) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO fraud_rule_history (version, at, actor, source, action, name, rule_when, score, comment, disabled)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), res.Version, now, actor, source, action, r.Name, r.When, r.Score, r.Comment, r.Disabled)
		if err != nil {
			return fmt.Errorf("archive: fraud rules: history: %w", err)
		}
		return nil
	}
	byName := map[string]fraud.Rule{}
	for _, r := range old {
		byName[r.Name] = r
	}
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.Name] = true
		prev, had := byName[r.Name]
		if had && prev.When == r.When && prev.Score == r.Score && prev.Comment == r.Comment && prev.Disabled == r.Disabled {
			continue
		}
		action := RuleAdded
		if had {
			action = RuleChanged
			_, err = tx.ExecContext(ctx, s.q(`UPDATE fraud_rules SET rule_when = ?, score = ?, comment = ?, disabled = ?, version = ?, changed_at = ?, changed_by = ? WHERE name = ?`),
				r.When, r.Score, r.Comment, r.Disabled, res.Version, now, actor, r.Name)
			res.Changed = append(res.Changed, r.Name)
		} else {
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO fraud_rules (name, rule_when, score, comment, disabled, version, changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
				r.Name, r.When, r.Score, r.Comment, r.Disabled, res.Version, now, actor)
			res.Added = append(res.Added, r.Name)
		}
		if err != nil {
			return res, fmt.Errorf("archive: fraud rules: %w", err)
		}
		if err := history(action, r); err != nil {
			return res, err
		}
	}
	for _, r := range old {
		if seen[r.Name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM fraud_rules WHERE name = ?`), r.Name); err != nil {
			return res, fmt.Errorf("archive: fraud rules: %w", err)
		}
		if err := history(RuleRemoved, r); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, r.Name)
	}
	sort.Strings(res.Added)
	sort.Strings(res.Changed)
	sort.Strings(res.Removed)
	if res.Unchanged() {
		res.Version-- // rolled back: the version did not move
		return res, nil
	}
	if err := s.notifyFraud(ctx, tx, FraudChangedRules); err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("archive: fraud rules: %w", err)
	}
	detail := fmt.Sprintf("version %d from %s: added %d, changed %d, removed %d", res.Version, source, len(res.Added), len(res.Changed), len(res.Removed))
	if _, err := s.Audit(ctx, AuditEntry{Actor: actor, Action: ActionFraudRules, Address: by.Address, Detail: detail}); err != nil {
		return res, err
	}
	return res, nil
}

// loadRules reads the current set, by name, through q (the store's
// database or a transaction).
func loadRules(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) ([]fraud.Rule, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, rule_when, score, comment, disabled FROM fraud_rules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	defer rows.Close()
	var out []fraud.Rule
	for rows.Next() {
		var r fraud.Rule
		if err := rows.Scan(&r.Name, &r.When, &r.Score, &r.Comment, &r.Disabled); err != nil {
			return nil, fmt.Errorf("archive: fraud rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	return out, nil
}

// Rules returns the set's version and its rules, by name (version 0:
// never loaded).
func (s *Store) Rules(ctx context.Context) (int64, []fraud.Rule, error) {
	if err := s.ensure(ctx); err != nil {
		return 0, nil, err
	}
	// One transaction, so the version is the set's.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM fraud_rules_head WHERE id = 1`).Scan(&v); err != nil {
		return 0, nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	rules, err := loadRules(ctx, tx)
	return v, rules, err
}

// RulesVersion is the set's version: one row read, what nodes poll.
func (s *Store) RulesVersion(ctx context.Context) (int64, error) {
	if err := s.ensure(ctx); err != nil {
		return 0, err
	}
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM fraud_rules_head WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("archive: fraud rules: %w", err)
	}
	return v, nil
}

// RulesHistory returns the history, newest first, at most limit rows
// (0: 500).
func (s *Store) RulesHistory(ctx context.Context, limit int) ([]RuleChange, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 10000 {
		limit = 500
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT version, at, actor, source, action, name, rule_when, score, comment, disabled
 FROM fraud_rule_history ORDER BY id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	defer rows.Close()
	var out []RuleChange
	for rows.Next() {
		var c RuleChange
		var at int64
		if err := rows.Scan(&c.Version, &at, &c.Actor, &c.Source, &c.Action, &c.Rule.Name, &c.Rule.When, &c.Rule.Score, &c.Rule.Comment, &c.Rule.Disabled); err != nil {
			return nil, fmt.Errorf("archive: fraud rules: %w", err)
		}
		c.At = time.UnixMilli(at).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: fraud rules: %w", err)
	}
	return out, nil
}
