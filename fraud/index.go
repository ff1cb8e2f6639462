package fraud

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Index is static fraud data built for lookups. It holds (almost) no
// pointers, so the garbage collector does not scan it however many entries
// it holds (issue 24: a map of *Entry over 1,000,000 entries cost every GC
// cycle ~0.3 s of marking, paid partly by screenings as mark assists):
//
//   - every entry's value, comment and author are in one string (the arena;
//     comments and authors stored once however many entries share them);
//   - each entry is a pointer-free record: offsets into the arena, score,
//     type, time added;
//   - (type, value) keys are hashed (hash/maphash) into an open-addressing
//     table of uint64 slots (32 bits of hash, 32 bits of record number),
//     linear probing, at most half full;
//   - source prefixes are in a map keyed by a pointer-free struct (address
//     bytes and length), probed once per prefix length in use.
//
// Lookups do not allocate. Immutable once built; safe for concurrent use.
type Index struct {
	arena    string
	recs     []indexRec
	slots    []uint64 // 0: empty; else hash>>32<<32 | record number + 1
	mask     uint64
	seed     maphash.Seed
	prefixes map[srcKey]uint32 // record number
	lens4    []int             // prefix lengths in use, longest first
	lens6    []int
	defaults [numTypes]int
}

const numTypes = 7 // len(Types)

// span is a substring of the arena.
type span struct{ off, n uint32 }

// indexRec is one entry, pointer-free.
type indexRec struct {
	val, comment, by span
	added            int64 // Unix nanoseconds when hasAdded
	score            int32
	typ              uint8 // index in Types
	hasScore         bool
	hasAdded         bool
}

// srcKey is a source prefix as a pointer-free map key.
type srcKey struct {
	addr [16]byte
	bits uint8
	is4  bool
}

func typeIndex(t Type) (uint8, bool) {
	for i, x := range Types {
		if x == t {
			return uint8(i), true
		}
	}
	return 0, false
}

// NewIndex builds an Index over entries (already normalised, as a Store
// holds them); defaults gives each type's score for entries without one.
// When two entries share a type and value, the later one is found.
func NewIndex(entries []Entry, defaults map[Type]int) (*Index, error) {
	ix := &Index{seed: maphash.MakeSeed(), prefixes: map[srcKey]uint32{}}
	for t, sc := range defaults {
		if i, ok := typeIndex(t); ok {
			ix.defaults[i] = sc
		}
	}
	size := 2 * len(entries)
	size = max(16, 1<<bitsFor(size))
	ix.slots = make([]uint64, size)
	ix.mask = uint64(size - 1)
	ix.recs = make([]indexRec, len(entries))
	var arena strings.Builder
	seen := map[string]span{} // comments and authors, stored once
	put := func(s string, dedupe bool) (span, error) {
		if s == "" {
			return span{}, nil
		}
		if dedupe {
			if sp, ok := seen[s]; ok {
				return sp, nil
			}
		}
		if arena.Len()+len(s) > math.MaxUint32 {
			return span{}, fmt.Errorf("index: static data over 4 GB: %w", ErrValue)
		}
		sp := span{uint32(arena.Len()), uint32(len(s))}
		arena.WriteString(s)
		if dedupe && len(seen) < 1<<16 {
			seen[s] = sp
		}
		return sp, nil
	}
	l4, l6 := map[int]bool{}, map[int]bool{}
	for i := range entries {
		e := &entries[i]
		var p netip.Prefix
		if e.Type == TypeSource {
			var err error
			p, err = netip.ParsePrefix(e.Value)
			if err != nil || p != p.Masked() {
				return nil, fmt.Errorf("index source entry %d: %w", i, ErrValue)
			}
		}
		typ, ok := typeIndex(e.Type)
		if !ok {
			return nil, fmt.Errorf("index entry %d: %q: %w", i, e.Type, ErrType)
		}
		r := &ix.recs[i]
		r.typ = typ
		var err error
		if r.val, err = put(e.Value, false); err != nil {
			return nil, err
		}
		if r.comment, err = put(e.Comment, true); err != nil {
			return nil, err
		}
		if r.by, err = put(e.AddedBy, true); err != nil {
			return nil, err
		}
		if e.Score != nil { // within ±MaxScore in a Store; clamped to int32 here
			r.score, r.hasScore = int32(max(math.MinInt32, min(math.MaxInt32, *e.Score))), true
		}
		if !e.Added.IsZero() {
			r.added, r.hasAdded = e.Added.UnixNano(), true
		}
		if e.Type == TypeSource {
			ix.prefixes[prefixKey(p)] = uint32(i)
			if p.Addr().Is4() {
				l4[p.Bits()] = true
			} else {
				l6[p.Bits()] = true
			}
			continue
		}
		ix.arena = arena.String() // no copy: the builder's bytes so far
		ix.insert(typ, e.Value, uint32(i))
	}
	ix.arena = arena.String()
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
	return ix, nil
}

// bitsFor is the number of bits to hold n - 1 (so 1<<bitsFor(n) >= n).
func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func prefixKey(p netip.Prefix) srcKey {
	return srcKey{addr: p.Addr().As16(), bits: uint8(p.Bits()), is4: p.Addr().Is4()}
}

// hash mixes the type into the value's maphash (murmur3's finaliser).
func (ix *Index) hash(typ uint8, v string) uint64 {
	h := maphash.String(ix.seed, v) ^ (uint64(typ)+1)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// insert puts record r under (typ, v), replacing an earlier record with
// the same key. The table is at most half full, so the probe ends.
func (ix *Index) insert(typ uint8, v string, r uint32) {
	h := ix.hash(typ, v)
	tag := h >> 32 << 32
	for i := h & ix.mask; ; i = (i + 1) & ix.mask {
		s := ix.slots[i]
		if s == 0 {
			ix.slots[i] = tag | uint64(r+1)
			return
		}
		if s&^0xffffffff == tag {
			o := &ix.recs[uint32(s)-1]
			if o.typ == typ && ix.text(o.val) == v {
				ix.slots[i] = tag | uint64(r+1)
				return
			}
		}
	}
}

// find returns the record number of (t, v), without allocating.
func (ix *Index) find(t Type, v string) (uint32, bool) {
	typ, ok := typeIndex(t)
	if !ok || t == TypeSource || len(ix.recs) == 0 {
		return 0, false
	}
	h := ix.hash(typ, v)
	tag := h >> 32 << 32
	for i := h & ix.mask; ; i = (i + 1) & ix.mask {
		s := ix.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^0xffffffff == tag {
			r := uint32(s) - 1
			o := &ix.recs[r]
			if o.typ == typ && ix.text(o.val) == v {
				return r, true
			}
		}
	}
}

// sources calls fn with the record number of every source prefix
// containing a, longest first.
func (ix *Index) sources(a netip.Addr, fn func(uint32)) {
	if !a.IsValid() || len(ix.prefixes) == 0 {
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
		if r, ok := ix.prefixes[prefixKey(p)]; ok {
			fn(r)
		}
	}
}

// Len is the number of entries.
func (ix *Index) Len() int { return len(ix.recs) }

// score is record r's score: its own, or its type's default.
func (ix *Index) score(r uint32) int {
	o := &ix.recs[r]
	if o.hasScore {
		return int(o.score)
	}
	return ix.defaults[o.typ]
}

// match is record r as a Decision's Match (substrings of the arena: no
// allocation).
func (ix *Index) match(r uint32) Match {
	o := &ix.recs[r]
	return Match{Kind: "static", Type: Types[o.typ], Value: ix.text(o.val), Score: ix.score(r), Comment: ix.text(o.comment)}
}

func (ix *Index) text(sp span) string { return ix.arena[sp.off : sp.off+sp.n] }

// entry rebuilds record r as an Entry (Added in UTC).
func (ix *Index) entry(r uint32) *Entry {
	o := &ix.recs[r]
	e := &Entry{Type: Types[o.typ], Value: ix.text(o.val), Comment: ix.text(o.comment), AddedBy: ix.text(o.by)}
	if o.hasScore {
		sc := int(o.score)
		e.Score = &sc
	}
	if o.hasAdded {
		e.Added = time.Unix(0, o.added).UTC()
	}
	return e
}

// Score is e's score: its own, or its type's default.
func (ix *Index) Score(e *Entry) int {
	if e.Score != nil {
		return *e.Score
	}
	if i, ok := typeIndex(e.Type); ok {
		return ix.defaults[i]
	}
	return 0
}

// Lookup returns the entry of type t with the normalised value v (a new
// Entry each call: the Screener uses the allocation-free path).
func (ix *Index) Lookup(t Type, v string) (*Entry, bool) {
	r, ok := ix.find(t, v)
	if !ok {
		return nil, false
	}
	return ix.entry(r), true
}

// Sources calls fn for every source prefix containing a, longest first.
func (ix *Index) Sources(a netip.Addr, fn func(*Entry)) {
	ix.sources(a, func(r uint32) { fn(ix.entry(r)) })
}
