package fraud

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// ErrRule: a rule is refused (wrapped in a *RuleError).
var ErrRule = errors.New("fraud: bad rule")

// Env is what a rule's expression sees: these names, with these types, and
// nothing else (a rule naming anything else is refused at load). Strings
// are normalised as static data is (caller E.164, email lower case,
// postcodes without spaces, upper case).
type Env struct {
	// Caller is the caller's number, E.164 ("+447700900123"); "" unknown.
	Caller string `expr:"caller"`
	// Verstat is the carrier's verification (RFC 8588): TN-Validation-Passed,
	// TN-Validation-Failed, No-TN-Validation, or "".
	Verstat string `expr:"verstat"`
	// Verified is verstat == "TN-Validation-Passed".
	Verified bool `expr:"verified"`
	// Source is the source address ("192.0.2.7"), "" unknown.
	Source string `expr:"source"`
	// Trunk is the trunk the call came in on, "" when none.
	Trunk string `expr:"trunk"`
	// Route, Queue, Agent are the interaction's.
	Route string `expr:"route"`
	Queue string `expr:"queue"`
	Agent string `expr:"agent"`
	// Hour (0-23) and Weekday ("Monday"…) are the screening's local time.
	Hour    int    `expr:"hour"`
	Weekday string `expr:"weekday"`
	// Data is the participant data as given.
	Data map[string]string `expr:"data"`
	// Email, Postcode, ExtendedPostcode, CustomerID are the participant
	// data's, normalised; "" when absent or not normalisable.
	Email            string `expr:"email"`
	Postcode         string `expr:"postcode"`
	ExtendedPostcode string `expr:"extended_postcode"`
	CustomerID       string `expr:"customer_id"`
	// Payment is true when a payment is screened; the card fields are ""
	// and Amount 0 otherwise.
	Payment  bool    `expr:"payment"`
	BIN      string  `expr:"bin"`
	Last4    string  `expr:"last4"`
	Brand    string  `expr:"brand"`
	Country  string  `expr:"country"`
	Amount   float64 `expr:"amount"`
	Currency string  `expr:"currency"`
	// Velocity over the configured window (Velocity interface).
	PaymentsCaller   int `expr:"payments_caller"`
	DeclinesCaller   int `expr:"declines_caller"`
	PaymentsCustomer int `expr:"payments_customer"`
	DeclinesCustomer int `expr:"declines_customer"`
	CardsCaller      int `expr:"cards_caller"`
	// PaymentsCard and DeclinesCard count this card's payments (by its
	// token) over the window, from any caller (CardVelocity).
	PaymentsCard int `expr:"payments_card"`
	DeclinesCard int `expr:"declines_card"`
	CallsToday   int `expr:"calls_today"`
}

// Rule is a named, scored condition.
type Rule struct {
	// Name identifies the rule (unique in a set).
	Name string `yaml:"name" json:"name"`
	// When is an expr-lang expression over Env, true when the rule matches.
	When string `yaml:"when" json:"when"`
	// Score is added to the total when the rule matches.
	Score int `yaml:"score" json:"score"`
	// Comment says what the rule is for.
	Comment string `yaml:"comment,omitempty" json:"comment,omitempty"`
	// Disabled rules are checked but not evaluated.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`

	line int // of the rule in its YAML file, 0 unknown
}

// RuleError names the refused rule and where.
type RuleError struct {
	// File and Line locate the rule in YAML ("" and 0 when unknown).
	File string
	Line int
	// Name is the rule's name ("" when it has none).
	Name string
	// ExprLine and Column locate the fault in the expression (1-based;
	// 0 when the fault is not in it).
	ExprLine, Column int
	// Msg says what is wrong.
	Msg string
}

func (e *RuleError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "rule %q", e.Name)
	if e.Column > 0 {
		fmt.Fprintf(&b, " at line %d column %d of when", e.ExprLine, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap gives ErrRule.
func (e *RuleError) Unwrap() error { return ErrRule }

// envSample is Env as the map rules are compiled against: one key per expr
// tag, holding the field's zero value, so expr type-checks names and types
// exactly as the struct declares them; at run time a map is filled from an
// Env (fill). A map environment lets expr read a name with one map probe
// (OpLoadFast) instead of a reflected field read that allocates per access.
var envSample = func() map[string]any {
	m := map[string]any{}
	t := reflect.TypeOf(Env{})
	for i := range t.NumField() {
		f := t.Field(i)
		m[f.Tag.Get("expr")] = reflect.Zero(f.Type).Interface()
	}
	return m
}()

// fill writes e's values into m (keys as envSample's).
func (e *Env) fill(m map[string]any) {
	m["caller"] = e.Caller
	m["verstat"] = e.Verstat
	m["verified"] = e.Verified
	m["source"] = e.Source
	m["trunk"] = e.Trunk
	m["route"] = e.Route
	m["queue"] = e.Queue
	m["agent"] = e.Agent
	m["hour"] = e.Hour
	m["weekday"] = e.Weekday
	m["data"] = e.Data
	m["email"] = e.Email
	m["postcode"] = e.Postcode
	m["extended_postcode"] = e.ExtendedPostcode
	m["customer_id"] = e.CustomerID
	m["payment"] = e.Payment
	m["bin"] = e.BIN
	m["last4"] = e.Last4
	m["brand"] = e.Brand
	m["country"] = e.Country
	m["amount"] = e.Amount
	m["currency"] = e.Currency
	m["payments_caller"] = e.PaymentsCaller
	m["declines_caller"] = e.DeclinesCaller
	m["payments_customer"] = e.PaymentsCustomer
	m["declines_customer"] = e.DeclinesCustomer
	m["cards_caller"] = e.CardsCaller
	m["payments_card"] = e.PaymentsCard
	m["declines_card"] = e.DeclinesCard
	m["calls_today"] = e.CallsToday
}

// evalState is what one Eval reuses: the VM and the environment map.
type evalState struct {
	vm  vm.VM
	env map[string]any
}

// compiled is a rule with its program.
type compiled struct {
	Rule
	prog *vm.Program
}

// RuleSet is a compiled, immutable set of rules, safe for concurrent use.
type RuleSet struct {
	rules []compiled
	pool  sync.Pool
	// all evaluates every enabled rule in one VM run (a list of their
	// results, in the order of enabled): a run's fixed cost paid once, not
	// per rule. When it fails at run time, Eval falls back to one run per
	// rule to name the failing ones.
	all     *vm.Program
	enabled []int
}

// Rules returns the set's rules.
func (s *RuleSet) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i := range s.rules {
		out[i] = s.rules[i].Rule
	}
	return out
}

// Len is the number of rules (enabled or not).
func (s *RuleSet) Len() int { return len(s.rules) }

// Compile type-checks and compiles rules against Env. Every refused rule is
// reported (errors.Join of *RuleError): a missing or duplicate name, a score
// out of range, an expression that does not parse, names an unknown
// attribute, mistypes one, or is not boolean. src names the source in the
// errors.
func Compile(src string, rules []Rule) (*RuleSet, error) {
	set := &RuleSet{}
	set.pool.New = func() any { return &evalState{env: make(map[string]any, len(envSample))} }
	var errs []error
	seen := map[string]bool{}
	for _, r := range rules {
		bad := func(msg string) { errs = append(errs, &RuleError{File: src, Line: r.line, Name: r.Name, Msg: msg}) }
		switch {
		case strings.TrimSpace(r.Name) == "":
			bad("no name")
			continue
		case seen[r.Name]:
			bad("duplicate name")
			continue
		case r.Score < -MaxScore || r.Score > MaxScore:
			bad(fmt.Sprintf("score %d out of range ±%d", r.Score, MaxScore))
			continue
		case strings.TrimSpace(r.When) == "":
			bad("empty when")
			continue
		case HasPAN(r.When) || HasPAN(r.Comment):
			bad("holds a card number")
			continue
		}
		seen[r.Name] = true
		prog, err := expr.Compile(r.When, expr.Env(envSample), expr.AsBool())
		if err != nil {
			re := &RuleError{File: src, Line: r.line, Name: r.Name, Msg: err.Error()}
			var fe *file.Error
			if errors.As(err, &fe) {
				re.ExprLine, re.Column, re.Msg = fe.Line, fe.Column+1, fe.Message
			}
			errs = append(errs, re)
			continue
		}
		set.rules = append(set.rules, compiled{Rule: r, prog: prog})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var b strings.Builder
	b.WriteString("[")
	for i := range set.rules {
		if set.rules[i].Disabled {
			continue
		}
		if len(set.enabled) > 0 {
			b.WriteString(",")
		}
		set.enabled = append(set.enabled, i)
		b.WriteString("(\n")
		b.WriteString(set.rules[i].When)
		b.WriteString("\n)")
	}
	b.WriteString("]")
	if len(set.enabled) > 0 {
		// Each part compiled alone above; together they can only fail
		// if one escapes its parentheses, and then rules run one by one.
		if all, err := expr.Compile(b.String(), expr.Env(envSample)); err == nil {
			set.all = all
		}
	}
	return set, nil
}

// Eval runs every enabled rule against env and calls match for each that is
// true; a rule whose evaluation fails at run time is passed to fail and does
// not match.
func (s *RuleSet) Eval(env *Env, match func(*Rule), fail func(*Rule, error)) {
	if s == nil || len(s.rules) == 0 {
		return
	}
	st := s.pool.Get().(*evalState)
	defer s.pool.Put(st)
	env.fill(st.env)
	defer clear(st.env) // the pool keeps no participant data
	if s.all != nil {
		if out, err := st.vm.Run(s.all, st.env); err == nil {
			if res, ok := out.([]any); ok && len(res) == len(s.enabled) {
				for j, v := range res {
					if b, _ := v.(bool); b {
						match(&s.rules[s.enabled[j]].Rule)
					}
				}
				return
			}
		}
	}
	for i := range s.rules {
		r := &s.rules[i]
		if r.Disabled {
			continue
		}
		out, err := st.vm.Run(r.prog, st.env)
		if err != nil {
			if fail != nil {
				fail(&r.Rule, err)
			}
			continue
		}
		if b, _ := out.(bool); b {
			match(&r.Rule)
		}
	}
}

// rulesFile is the YAML shape of a rules file.
type rulesFile struct {
	Rules []Rule `yaml:"rules"`
}

// UnmarshalYAML records the rule's line and refuses unknown keys.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a rule is a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "name", "when", "score", "comment", "disabled":
		default:
			return fmt.Errorf("line %d: rule field %q unknown (want name, when, score, comment, disabled)", n.Content[i].Line, k)
		}
	}
	type plain Rule
	if err := n.Decode((*plain)(r)); err != nil {
		return err
	}
	r.line = n.Line
	return nil
}

// ParseRules reads a rules YAML document ("rules: [{name, when, score,
// comment, disabled}]") and compiles it; name labels errors.
func ParseRules(name string, r io.Reader) (*RuleSet, error) {
	rules, err := decodeRules(name, r)
	if err != nil {
		return nil, err
	}
	return Compile(name, rules)
}

func decodeRules(name string, r io.Reader) ([]Rule, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrRule)
	}
	return f.Rules, nil
}

// LoadRules reads rules from a YAML file or, when path is a directory, from
// every *.yaml and *.yml file in it (sorted by name; rule names unique across
// them), and compiles them all.
func LoadRules(path string) (*RuleSet, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var all []Rule
	var errs []error
	owner := map[string]string{}
	for _, fn := range files {
		f, err := os.Open(fn)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules: %w", err))
			continue
		}
		rules, err := decodeRules(fn, f)
		f.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Compile per file so errors name the right file.
		if _, err := Compile(fn, rules); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rules {
			if prev, dup := owner[r.Name]; dup {
				errs = append(errs, &RuleError{File: fn, Line: r.line, Name: r.Name, Msg: "duplicate name (also in " + prev + ")"})
				continue
			}
			owner[r.Name] = fn
			all = append(all, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Compile(path, all)
}
