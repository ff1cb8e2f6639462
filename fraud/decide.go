package fraud

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counts are velocity attributes over a window.
type Counts struct {
	// PaymentsCaller and DeclinesCaller count payments and declined
	// payments from the caller's number; PaymentsCustomer and
	// DeclinesCustomer from the customer id.
	PaymentsCaller, DeclinesCaller     int
	PaymentsCustomer, DeclinesCustomer int
	// CardsCaller counts distinct card tokens used from the caller's number.
	CardsCaller int
	// CallsToday counts calls from the caller's number since local midnight.
	CallsToday int
	// PaymentsCard and DeclinesCard count the card's payments (by its
	// token) from any number: answered by VelocityQuerier only.
	PaymentsCard, DeclinesCard int
}

// VelocityQuery is one screening's velocity question: the caller (E.164),
// customer id and card token ("" when unknown), the window's start and
// the local midnight.
type VelocityQuery struct {
	Caller, Customer, CardToken string
	Since, Midnight             time.Time
}

// VelocityQuerier is implemented by a Velocity that answers a screening's
// every count at once (the archive: one statement, one round trip, one
// read transaction); the Screener prefers it to Counts and CardCounts.
type VelocityQuerier interface {
	Query(ctx context.Context, q VelocityQuery) (Counts, error)
}

// Velocity answers velocity attributes; the archive implements it over its
// payment records, MemVelocity in memory. caller is E.164 and customer a
// customer id ("" when unknown); since is the window's start.
type Velocity interface {
	Counts(ctx context.Context, caller, customer string, since, midnight time.Time) (Counts, error)
}

// CardVelocity is implemented by a Velocity that also counts one card's
// payments (by its token, never the number) since since: the
// payments_card and declines_card attributes.
type CardVelocity interface {
	CardCounts(ctx context.Context, cardToken string, since time.Time) (payments, declines int, err error)
}

// VelocityEvent is one recorded payment or call for MemVelocity.
type VelocityEvent struct {
	Time      time.Time
	Caller    string // E.164
	Customer  string
	Payment   bool   // a payment attempt (false: a call)
	Declined  bool   // the payment was declined
	CardToken string // keyed HMAC token of the card, never the number
}

// MemVelocity is a Velocity in memory, for tests and a single demo node.
type MemVelocity struct {
	mu     sync.Mutex
	events []VelocityEvent
}

// Record adds an event; a token that is not a 64-hex token is refused.
func (m *MemVelocity) Record(e VelocityEvent) error {
	if e.CardToken != "" && !isToken(e.CardToken) {
		return fmt.Errorf("velocity card token: %w", ErrSecret)
	}
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	return nil
}

// Counts implements Velocity.
func (m *MemVelocity) Counts(_ context.Context, caller, customer string, since, midnight time.Time) (Counts, error) {
	var c Counts
	cards := map[string]bool{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		fromCaller := caller != "" && e.Caller == caller
		if !e.Payment {
			if fromCaller && !e.Time.Before(midnight) {
				c.CallsToday++
			}
			continue
		}
		if e.Time.Before(since) {
			continue
		}
		if fromCaller {
			c.PaymentsCaller++
			if e.Declined {
				c.DeclinesCaller++
			}
			if e.CardToken != "" {
				cards[e.CardToken] = true
			}
		}
		if customer != "" && e.Customer == customer {
			c.PaymentsCustomer++
			if e.Declined {
				c.DeclinesCustomer++
			}
		}
	}
	c.CardsCaller = len(cards)
	return c, nil
}

// CardCounts implements CardVelocity.
func (m *MemVelocity) CardCounts(_ context.Context, token string, since time.Time) (payments, declines int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if e.Payment && token != "" && e.CardToken == token && !e.Time.Before(since) {
			payments++
			if e.Declined {
				declines++
			}
		}
	}
	return payments, declines, nil
}

// BINInfo is what a BIN table says about a card range.
type BINInfo struct {
	Brand, Country string
}

// BINTable maps BIN prefixes (6 to 8 digits) to brand and country; the
// longest prefix wins.
type BINTable map[string]BINInfo

// Lookup returns the info of the longest prefix of bin in the table.
func (t BINTable) Lookup(bin string) (BINInfo, bool) {
	for l := min(len(bin), 8); l >= 6; l-- {
		if i, ok := t[bin[:l]]; ok {
			return i, true
		}
	}
	return BINInfo{}, false
}

// ParseBINTable reads CSV "bin,brand,country" (header first); errors name
// the line.
func ParseBINTable(r io.Reader) (BINTable, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	t := BINTable{}
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, &LineError{Line: line, Reason: err}
		}
		if first {
			first = false
			if strings.EqualFold(strings.TrimSpace(rec[0]), "bin") {
				continue
			}
		}
		bin, err := Normaliser{}.BIN(rec[0])
		if err != nil {
			return nil, &LineError{Line: line, Reason: err}
		}
		t[bin] = BINInfo{Brand: strings.TrimSpace(rec[1]), Country: strings.ToUpper(strings.TrimSpace(rec[2]))}
	}
}

// Settings tune a Screener.
type Settings struct {
	// MinimumScore: a total at or above it holds.
	MinimumScore int
	// RouteMinimumScores override MinimumScore per route.
	RouteMinimumScores map[string]int
	// DefaultScores are the scores of entries without their own.
	DefaultScores map[Type]int
	// Normaliser normalises attributes as static data is.
	Normaliser Normaliser
	// VelocityWindow is how far back payment velocity counts (0: 24 h).
	VelocityWindow time.Duration
	// Location is the time zone of hour, weekday and "today" (nil: UTC).
	Location *time.Location
	// BINs, when set, fills a payment's brand and country.
	BINs BINTable
	// Velocity, when set, answers velocity attributes.
	Velocity Velocity
	// Now is the clock for attributes without a Time (nil: time.Now).
	Now func() time.Time
}

// Match is one scored reason in a Decision.
type Match struct {
	// Kind is "static" or "rule".
	Kind string `json:"kind"`
	// Type and Value name a static entry (Value normalised; never a card
	// number — static data cannot hold one).
	Type  Type   `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
	// Rule names a rule.
	Rule string `json:"rule,omitempty"`
	// Score is what the match added.
	Score int `json:"score"`
	// Comment is the entry's or rule's comment.
	Comment string `json:"comment,omitempty"`
}

// Decision is a screening's outcome.
type Decision struct {
	// Score is the sum over unique matches.
	Score int `json:"score"`
	// Minimum is the threshold applied (route's or global).
	Minimum int `json:"minimum"`
	// Hold: Score >= Minimum. Otherwise proceed.
	Hold bool `json:"hold"`
	// Matches lists every match with its score, static first.
	Matches []Match `json:"matches"`
	// RuleErrors names rules that failed at run time (they scored 0) and
	// VelocityError says velocity was unavailable (its attributes were 0).
	RuleErrors    []string `json:"rule_errors,omitempty"`
	VelocityError string   `json:"velocity_error,omitempty"`
}

// Against returns d decided against minimum instead of the threshold it
// was screened with: a call screened at arrival is judged against
// fraud.call.minimum_score, a payment against fraud.minimum_score.
func (d Decision) Against(minimum int) Decision {
	d.Minimum = minimum
	d.Hold = len(d.Matches) > 0 && d.Score >= minimum
	return d
}

// Screener screens attributes against an Index and a RuleSet, both
// replaceable at any time (atomically) without a restart. Safe for
// concurrent use.
type Screener struct {
	set   Settings
	index atomic.Pointer[Index]
	rules atomic.Pointer[RuleSet]
}

// NewScreener returns a Screener over ix and rules (either may be nil:
// nothing to match).
func NewScreener(s Settings, ix *Index, rules *RuleSet) *Screener {
	if s.VelocityWindow <= 0 {
		s.VelocityWindow = 24 * time.Hour
	}
	if s.Location == nil {
		s.Location = time.UTC
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	sc := &Screener{set: s}
	sc.SetIndex(ix)
	sc.SetRules(rules)
	return sc
}

// SetIndex replaces the static data index.
func (s *Screener) SetIndex(ix *Index) {
	if ix == nil {
		ix, _ = NewIndex(nil, s.set.DefaultScores)
	}
	s.index.Store(ix)
}

// RuleCount is the number of rules screened with now.
func (s *Screener) RuleCount() int { return s.rules.Load().Len() }

// SetRules replaces the rules.
func (s *Screener) SetRules(r *RuleSet) {
	if r == nil {
		r = &RuleSet{}
	}
	s.rules.Store(r)
}

// Screen checks a (refusing any card secret, ErrSecret), normalises it,
// looks up static data and evaluates the rules, and decides. An
// attribute that cannot be normalised is simply not looked up.
func (s *Screener) Screen(ctx context.Context, a Attributes) (Decision, error) {
	if err := a.Check(); err != nil {
		return Decision{}, err
	}
	ix, rules := s.index.Load(), s.rules.Load()
	n := s.set.Normaliser
	at := a.Time
	if at.IsZero() {
		at = s.set.Now()
	}
	at = at.In(s.set.Location)
	env := Env{
		Verstat: a.Verstat, Verified: a.Verstat == "TN-Validation-Passed",
		Trunk: a.Trunk, Route: a.Route, Queue: a.Queue, Agent: a.Agent,
		Hour: at.Hour(), Weekday: at.Weekday().String(), Data: a.Data,
	}
	if a.Source.IsValid() {
		env.Source = a.Source.Unmap().WithZone("").String()
	}
	var d Decision
	add := func(r uint32) { // the index's allocation-free path
		m := ix.match(r)
		d.Score += m.Score
		d.Matches = append(d.Matches, m)
	}
	lookup := func(t Type, v string) {
		if v == "" {
			return
		}
		if r, ok := ix.find(t, v); ok {
			add(r)
		}
	}
	if a.Caller != "" {
		if v, err := n.Phone(a.Caller); err == nil {
			env.Caller = v
			lookup(TypePhone, v)
		}
	}
	if v, ok := a.Data[KeyEmail]; ok {
		if v, err := n.Email(v); err == nil {
			env.Email = v
			lookup(TypeEmail, v)
		}
	}
	if v, ok := a.Data[KeyPostcode]; ok {
		if v, err := n.Postcode(v); err == nil {
			env.Postcode = v
			lookup(TypePostcode, v)
		}
	}
	if v, ok := a.Data[KeyExtendedPostcode]; ok {
		if v, err := n.Postcode(v); err == nil {
			env.ExtendedPostcode = v
			lookup(TypeExtendedPostcode, v)
		}
	}
	if v, ok := a.Data[KeyCustomerID]; ok {
		if v, err := n.CustomerID(v); err == nil {
			env.CustomerID = v
			lookup(TypeCustomerID, v)
		}
	}
	ix.sources(a.Source, add)
	if p := a.Payment; p != nil {
		env.Payment = true
		env.BIN, env.Last4, env.Amount = p.BIN, p.Last4, p.Amount
		env.Currency = strings.ToUpper(p.Currency)
		env.Brand, env.Country = p.Brand, strings.ToUpper(p.Country)
		if info, ok := s.set.BINs.Lookup(p.BIN); ok {
			if env.Brand == "" {
				env.Brand = info.Brand
			}
			if env.Country == "" {
				env.Country = info.Country
			}
		}
		// A BIN entry matches on any 6-8 digit prefix of the card's BIN:
		// distinct prefixes are distinct entries, each counted once.
		for l := 6; l <= len(p.BIN); l++ {
			lookup(TypeBIN, p.BIN[:l])
		}
	}
	if c, asked, err := s.velocity(ctx, &env, a, at); err != nil {
		d.VelocityError = err.Error()
	} else if asked {
		env.PaymentsCaller, env.DeclinesCaller = c.PaymentsCaller, c.DeclinesCaller
		env.PaymentsCustomer, env.DeclinesCustomer = c.PaymentsCustomer, c.DeclinesCustomer
		env.CardsCaller, env.CallsToday = c.CardsCaller, c.CallsToday
		env.PaymentsCard, env.DeclinesCard = c.PaymentsCard, c.DeclinesCard
	}
	rules.Eval(&env, func(r *Rule) {
		d.Score += r.Score
		d.Matches = append(d.Matches, Match{Kind: "rule", Rule: r.Name, Score: r.Score, Comment: r.Comment})
	}, func(r *Rule, _ error) {
		d.RuleErrors = append(d.RuleErrors, r.Name)
	})
	d.Minimum = s.set.MinimumScore
	if m, ok := s.set.RouteMinimumScores[a.Route]; ok {
		d.Minimum = m
	}
	d.Hold = len(d.Matches) > 0 && d.Score >= d.Minimum
	return d, nil
}

// velocity asks the Velocity for the screening's counts: in one query
// when it is a VelocityQuerier, else Counts and, for a payment's card
// when it is a CardVelocity, CardCounts. asked is false when there was
// nothing to ask (no Velocity, no caller, customer or card).
func (s *Screener) velocity(ctx context.Context, env *Env, a Attributes, at time.Time) (c Counts, asked bool, err error) {
	q := VelocityQuery{Caller: env.Caller, Customer: env.CustomerID, Since: at.Add(-s.set.VelocityWindow),
		Midnight: time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, at.Location())}
	if a.Payment != nil {
		q.CardToken = a.Payment.CardToken
	}
	if vq, ok := s.set.Velocity.(VelocityQuerier); ok {
		if q.Caller == "" && q.Customer == "" && q.CardToken == "" {
			return c, false, nil
		}
		c, err = vq.Query(ctx, q)
		return c, true, err
	}
	if v := s.set.Velocity; v != nil && (q.Caller != "" || q.Customer != "") {
		if c, err = v.Counts(ctx, q.Caller, q.Customer, q.Since, q.Midnight); err != nil {
			return c, true, err
		}
		asked = true
	}
	if cv, ok := s.set.Velocity.(CardVelocity); ok && q.CardToken != "" {
		c.PaymentsCard, c.DeclinesCard, err = cv.CardCounts(ctx, q.CardToken, q.Since)
		asked = true
	}
	return c, asked, err
}
