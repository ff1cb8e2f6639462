package fraud

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Type is the kind of a static fraud entry.
type Type string

// The static entry types.
const (
	TypePhone            Type = "phone"
	TypeEmail            Type = "email"
	TypePostcode         Type = "postcode"
	TypeExtendedPostcode Type = "extended_postcode"
	TypeCustomerID       Type = "customer_id"
	TypeBIN              Type = "bin"
	TypeSource           Type = "source"
)

// Types lists every entry type, in display order.
var Types = []Type{TypePhone, TypeEmail, TypePostcode, TypeExtendedPostcode, TypeCustomerID, TypeBIN, TypeSource}

// More sentinel errors.
var (
	// ErrType: not one of Types.
	ErrType = errors.New("fraud: unknown entry type")
	// ErrNotFound: no such entry.
	ErrNotFound = errors.New("fraud: no such entry")
	// ErrCSV: a CSV import line is bad (wrapped in a *LineError).
	ErrCSV = errors.New("fraud: bad csv")
)

// ParseType returns the Type named s (case-insensitive).
func ParseType(s string) (Type, error) {
	t := Type(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Types, t) {
		return t, nil
	}
	return "", fmt.Errorf("%q: %w", s, ErrType)
}

// Entry is one piece of static fraud data.
type Entry struct {
	// Type is what Value is.
	Type Type `json:"type"`
	// Value is normalised for its type (Normaliser.Value).
	Value string `json:"value"`
	// Score is the entry's own score; nil means the type's default.
	Score *int `json:"score,omitempty"`
	// Comment says why it is listed.
	Comment string `json:"comment,omitempty"`
	// AddedBy is who added it; Added when.
	AddedBy string    `json:"added_by,omitempty"`
	Added   time.Time `json:"added,omitzero"`
}

// Key identifies an entry.
func (e Entry) Key() string { return string(e.Type) + ":" + e.Value }

// Normalise checks e's type and normalises its value; it refuses a value
// holding a card number (ErrSecret) so the static data can never hold one.
func (e *Entry) Normalise(n Normaliser) error {
	t, err := ParseType(string(e.Type))
	if err != nil {
		return err
	}
	if HasPAN(e.Value) && !(t == TypePhone && intlPhone(e.Value)) || HasPAN(e.Comment) {
		return fmt.Errorf("%s entry: %w", t, ErrSecret)
	}
	v, err := n.Value(t, e.Value)
	if err != nil {
		return err
	}
	e.Type, e.Value = t, v
	return nil
}

// Store is where static fraud data lives. The archive implements it on its
// database; MemStore is the in-memory one. Add and Remove take entries
// already normalised; Add replaces an entry with the same type and value.
type Store interface {
	// All returns every entry (to build an Index).
	All(ctx context.Context) ([]Entry, error)
	// Add adds or replaces entries, all or none.
	Add(ctx context.Context, entries ...Entry) error
	// Remove removes one entry; ErrNotFound when absent.
	Remove(ctx context.Context, t Type, value string) error
	// List returns the entries of type t (every type when empty), sorted
	// by type then value.
	List(ctx context.Context, t Type) ([]Entry, error)
}

// MemStore is a Store in memory, safe for concurrent use.
type MemStore struct {
	mu sync.Mutex
	m  map[string]Entry
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string]Entry{}} }

// All implements Store.
func (s *MemStore) All(ctx context.Context) ([]Entry, error) { return s.List(ctx, "") }

// Add implements Store.
func (s *MemStore) Add(_ context.Context, entries ...Entry) error {
	for _, e := range entries {
		if _, err := ParseType(string(e.Type)); err != nil || e.Value == "" {
			return fmt.Errorf("add %q: %w", e.Type, ErrType)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		s.m[e.Key()] = e
	}
	return nil
}

// Remove implements Store.
func (s *MemStore) Remove(_ context.Context, t Type, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(t) + ":" + value
	if _, ok := s.m[k]; !ok {
		return fmt.Errorf("remove %s: %w", t, ErrNotFound)
	}
	delete(s.m, k)
	return nil
}

// List implements Store.
func (s *MemStore) List(_ context.Context, t Type) ([]Entry, error) {
	s.mu.Lock()
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		if t == "" || e.Type == t {
			out = append(out, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := strings.Compare(string(a.Type), string(b.Type)); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out, nil
}

// LineError is a bad CSV line: its number (1-based, the header is line 1)
// and why. It never quotes the line.
type LineError struct {
	Line   int
	Reason error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Reason) }

// Unwrap gives ErrCSV and the reason.
func (e *LineError) Unwrap() []error { return []error{ErrCSV, e.Reason} }

// maxCSVErrors bounds the errors ParseCSV collects before it stops.
const maxCSVErrors = 20

// ParseCSV reads static entries from CSV with the header
// "type,value,score,comment" (score and comment columns optional, an empty
// score means the type's default). Every value is normalised; by and now
// fill AddedBy and Added. It returns all entries or, if any line is bad, no
// entries and the errors of up to 20 bad lines (errors.Join of *LineError).
func ParseCSV(r io.Reader, n Normaliser, by string, now time.Time) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, &LineError{Line: 1, Reason: fmt.Errorf("header: %v", err)}
	}
	col := map[string]int{"score": -1, "comment": -1}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup && col[h] >= 0 || h != "type" && h != "value" && h != "score" && h != "comment" {
			return nil, &LineError{Line: 1, Reason: fmt.Errorf("header: column %d %q: want type,value[,score][,comment]", i+1, h)}
		}
		col[h] = i
	}
	if _, ok := col["type"]; !ok {
		return nil, &LineError{Line: 1, Reason: errors.New("header: no type column")}
	}
	if _, ok := col["value"]; !ok {
		return nil, &LineError{Line: 1, Reason: errors.New("header: no value column")}
	}
	var out []Entry
	var errs []error
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
				err = pe.Err
			}
			errs = append(errs, &LineError{Line: line, Reason: err})
			if pe == nil || len(errs) >= maxCSVErrors {
				break
			}
			continue
		}
		if lineErr := func() error {
			if len(rec) != len(head) {
				return fmt.Errorf("%d fields, want %d", len(rec), len(head))
			}
			e := Entry{Type: Type(rec[col["type"]]), Value: rec[col["value"]], AddedBy: by, Added: now}
			if i := col["comment"]; i >= 0 {
				e.Comment = strings.TrimSpace(rec[i])
			}
			if i := col["score"]; i >= 0 && strings.TrimSpace(rec[i]) != "" {
				sc, err := strconv.Atoi(strings.TrimSpace(rec[i]))
				if err != nil || sc < -MaxScore || sc > MaxScore {
					return fmt.Errorf("score: want an integer from %d to %d", -MaxScore, MaxScore)
				}
				e.Score = &sc
			}
			if err := e.Normalise(n); err != nil {
				return err
			}
			if prev, dup := seen[e.Key()]; dup {
				return fmt.Errorf("duplicate of line %d", prev)
			}
			seen[e.Key()] = line
			out = append(out, e)
			return nil
		}(); lineErr != nil {
			errs = append(errs, &LineError{Line: line, Reason: lineErr})
			if len(errs) >= maxCSVErrors {
				break
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// MaxScore bounds a score's magnitude (a negative score lowers the total:
// a known good customer).
const MaxScore = 1_000_000
