package fraud

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseCSV(t *testing.T) {
	n := Normaliser{CountryCode: "44"}
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	in := "type,value,score,comment\n" +
		"phone,07700 900123,80,chargeback 2026-11\n" +
		"email,Fraud@Example.com,,\n" +
		"postcode,sw1a 1aa,20,\n" +
		"source,192.0.2.0/24,,botnet\n" +
		"BIN,411111,5,\n"
	es, err := ParseCSV(strings.NewReader(in), n, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 || es[0].Value != "+447700900123" || *es[0].Score != 80 || es[0].AddedBy != "alice" || !es[0].Added.Equal(now) {
		t.Fatalf("entries %+v", es)
	}
	if es[1].Value != "fraud@example.com" || es[1].Score != nil || es[3].Value != "192.0.2.0/24" || es[4].Type != TypeBIN {
		t.Fatalf("entries %+v", es)
	}

	bad := "type,value,score\n" +
		"phone,+447700900123,1\n" +
		"iban,GB00,1\n" + // line 3: type
		"email,nope,1\n" + // line 4: value
		"phone,+447700900123,2\n" + // line 5: duplicate of 2
		"bin,411111,many\n" + // line 6: score
		"customer_id,4111111111111111,1\n" + // line 7: a card
		"phone\n" // line 8: fields
	es, err = ParseCSV(strings.NewReader(bad), n, "", now)
	if es != nil || !errors.Is(err, ErrCSV) {
		t.Fatalf("got %v, %v", es, err)
	}
	msg := err.Error()
	for _, want := range []string{"line 3:", "line 4:", "line 5: duplicate of line 2", "line 6: score", "line 7:", "line 8:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 2:") || strings.Contains(msg, "4111111111111111") {
		t.Errorf("error wrong:\n%s", msg)
	}
	for _, h := range []string{"", "type\n", "value,type,iban\n", "type,type,value\n"} {
		if _, err := ParseCSV(strings.NewReader(h), n, "", now); !errors.Is(err, ErrCSV) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("header %q: %v", h, err)
		}
	}
}

func TestMemStoreAndIndex(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	sc := 70
	if err := s.Add(ctx,
		Entry{Type: TypePhone, Value: "+447700900123", Score: &sc},
		Entry{Type: TypeSource, Value: "10.0.0.0/8"},
		Entry{Type: TypeSource, Value: "10.1.2.0/24"},
		Entry{Type: TypeSource, Value: "2001:db8::/32"},
	); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, Entry{Type: "iban", Value: "x"}); !errors.Is(err, ErrType) {
		t.Fatalf("bad type added: %v", err)
	}
	if err := s.Remove(ctx, TypeEmail, "x@y"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove absent: %v", err)
	}
	all, _ := s.All(ctx)
	ix, err := NewIndex(all, map[Type]int{TypeSource: 30})
	if err != nil || ix.Len() != 4 {
		t.Fatal(ix, err)
	}
	if e, ok := ix.Lookup(TypePhone, "+447700900123"); !ok || ix.Score(e) != 70 {
		t.Fatal("phone not found")
	}
	var got []string
	ix.Sources(netip.MustParseAddr("::ffff:10.1.2.3"), func(e *Entry) { got = append(got, e.Value+"="+strconv.Itoa(ix.Score(e))) })
	if strings.Join(got, " ") != "10.1.2.0/24=30 10.0.0.0/8=30" {
		t.Fatalf("sources %v", got)
	}
	got = nil
	ix.Sources(netip.MustParseAddr("10.2.0.1"), func(e *Entry) { got = append(got, e.Value) })
	ix.Sources(netip.MustParseAddr("2001:db8:1::5"), func(e *Entry) { got = append(got, e.Value) })
	ix.Sources(netip.MustParseAddr("192.0.2.1"), func(e *Entry) { got = append(got, e.Value) })
	if strings.Join(got, " ") != "10.0.0.0/8 2001:db8::/32" {
		t.Fatalf("sources %v", got)
	}
	if err := s.Remove(ctx, TypePhone, "+447700900123"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(ctx, TypePhone); len(l) != 0 {
		t.Fatal("not removed")
	}
	if _, err := NewIndex([]Entry{{Type: TypeSource, Value: "10.1.2.3/8"}}, nil); !errors.Is(err, ErrValue) {
		t.Fatalf("unmasked prefix indexed: %v", err)
	}
}
