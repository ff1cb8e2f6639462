package fraud

import (
	"fmt"
	"net/netip"
	"slices"
)

// mapIndex is the Index as it was before issue 24's GC work, kept for
// BenchmarkIndexOldNew1M: static fraud data built for lookups: a map per type and, for
// sources, a map per prefix length in use (so a lookup costs at most one
// map probe per distinct length). Immutable once built; safe for
// concurrent use.
type mapIndex struct {
	byType   map[Type]map[string]*Entry
	prefixes map[netip.Prefix]*Entry
	lens4    []int // prefix lengths in use, longest first
	lens6    []int
	defaults map[Type]int
	n        int
}

// NewIndex builds an Index over entries (already normalised, as a Store
// holds them); defaults gives each type's score for entries without one.
func newMapIndex(entries []Entry, defaults map[Type]int) (*mapIndex, error) {
	ix := &mapIndex{byType: map[Type]map[string]*Entry{}, prefixes: map[netip.Prefix]*Entry{}, defaults: defaults}
	counts := map[Type]int{}
	for i := range entries {
		counts[entries[i].Type]++
	}
	for t, c := range counts {
		ix.byType[t] = make(map[string]*Entry, c)
	}
	es := make([]Entry, len(entries))
	copy(es, entries)
	l4, l6 := map[int]bool{}, map[int]bool{}
	for i := range es {
		e := &es[i]
		if e.Type == TypeSource {
			p, err := netip.ParsePrefix(e.Value)
			if err != nil || p != p.Masked() {
				return nil, fmt.Errorf("index source entry %d: %w", i, ErrValue)
			}
			ix.prefixes[p] = e
			if p.Addr().Is4() {
				l4[p.Bits()] = true
			} else {
				l6[p.Bits()] = true
			}
			continue
		}
		m, ok := ix.byType[e.Type]
		if !ok {
			return nil, fmt.Errorf("index entry %d: %q: %w", i, e.Type, ErrType)
		}
		m[e.Value] = e
	}
	for b := range l4 {
		ix.lens4 = append(ix.lens4, b)
	}
	for b := range l6 {
		ix.lens6 = append(ix.lens6, b)
	}
	slices.Sort(ix.lens4)
	slices.Reverse(ix.lens4)
	slices.Sort(ix.lens6)
	slices.Reverse(ix.lens6)
	ix.n = len(es)
	return ix, nil
}

// Len is the number of entries.
func (ix *mapIndex) Len() int { return ix.n }

// Score is e's score: its own, or its type's default.
func (ix *mapIndex) Score(e *Entry) int {
	if e.Score != nil {
		return *e.Score
	}
	return ix.defaults[e.Type]
}

// Lookup returns the entry of type t with the normalised value v.
func (ix *mapIndex) Lookup(t Type, v string) (*Entry, bool) {
	e, ok := ix.byType[t][v]
	return e, ok
}

// Sources calls fn for every source prefix containing a, longest first.
func (ix *mapIndex) Sources(a netip.Addr, fn func(*Entry)) {
	if !a.IsValid() {
		return
	}
	a = a.Unmap().WithZone("")
	lens := ix.lens6
	if a.Is4() {
		lens = ix.lens4
	}
	for _, b := range lens {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if e, ok := ix.prefixes[p]; ok {
			fn(e)
		}
	}
}
