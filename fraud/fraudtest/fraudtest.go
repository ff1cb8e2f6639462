// Package fraudtest is the fraud screening benchmarks' fixture, shared by
// the fraud package's in-memory benchmarks and the server's end-to-end
// one over the archive (docs/PERFORMANCE.md, "Fraud screening"): static
// entries over every type, rules built from varied templates, and varied
// attributes of which some hit the entries and some do not.
package fraudtest

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/cloak-voip/cloak/fraud"
)

// The sizes: 1,000,000 static entries and 1,000 rules.
const (
	NumEntries = 1_000_000
	NumRules   = 1_000
)

var (
	once    sync.Once
	entries []fraud.Entry
	rules   []fraud.Rule
)

// Fixture returns NumEntries entries (normalised, a third with a score of
// their own) and NumRules rules; built once, shared: do not modify them.
// They stay live (and marked by every GC cycle) for the test binary's
// life: a benchmark measuring a node's heap uses Fresh.
func Fixture() ([]fraud.Entry, []fraud.Rule) {
	once.Do(func() { entries, rules = Fresh() })
	return entries, rules
}

// Fresh builds Fixture's entries and rules anew, not kept: once the
// caller drops them the heap holds only what it built from them.
func Fresh() ([]fraud.Entry, []fraud.Rule) {
	var (
		entries []fraud.Entry
		rules   []fraud.Rule
	)
	{
		entries = make([]fraud.Entry, 0, NumEntries)
		for i := 0; len(entries) < NumEntries; i++ {
			var e fraud.Entry
			switch i % 10 {
			case 0, 1, 2, 3:
				e = fraud.Entry{Type: fraud.TypePhone, Value: fmt.Sprintf("+447%09d", i)}
			case 4, 5:
				e = fraud.Entry{Type: fraud.TypeEmail, Value: fmt.Sprintf("user%d@example%d.com", i, i%97)}
			case 6:
				e = fraud.Entry{Type: fraud.TypePostcode, Value: fmt.Sprintf("AB%07dCD", i)}
			case 7:
				e = fraud.Entry{Type: fraud.TypeCustomerID, Value: "C" + strconv.Itoa(i)}
			case 8:
				e = fraud.Entry{Type: fraud.TypeBIN, Value: strconv.Itoa(40000000 + i)}
			case 9:
				j := i / 10 // unique prefixes: /32s under 11/8, /24s under 12/8 and up
				a, bits := netip.AddrFrom4([4]byte{11, byte(j >> 16), byte(j >> 8), byte(j)}), 32
				if j%2 == 1 {
					a, bits = netip.AddrFrom4([4]byte{byte(12 + j>>16), byte(j >> 8), byte(j), 0}), 24
				}
				e = fraud.Entry{Type: fraud.TypeSource, Value: netip.PrefixFrom(a, bits).Masked().String()}
			}
			if i%3 == 0 {
				sc := i % 90
				e.Score = &sc
			}
			e.Comment = "bench"
			entries = append(entries, e)
		}
		rules = make([]fraud.Rule, NumRules)
		for i := range rules {
			var w string
			switch i % 8 {
			case 0:
				w = fmt.Sprintf("payment && !verified && amount >= %d", 100+i)
			case 1:
				w = fmt.Sprintf(`caller startsWith "+4477%03d"`, i)
			case 2:
				w = fmt.Sprintf(`payment && country in ["C%d", "D%d", "NG"] && amount > %d`, i, i, i)
			case 3:
				w = fmt.Sprintf(`email matches "@bad%d\\.(com|net)$"`, i)
			case 4:
				w = fmt.Sprintf("cards_caller >= %d && hour < %d", 2+i%5, i%24)
			case 5:
				w = fmt.Sprintf(`data["tier"] == "t%d" || queue == "q%d"`, i, i)
			case 6:
				w = fmt.Sprintf("declines_caller > %d and not (route in [\"vip\", \"r%d\"])", i%7, i)
			case 7:
				w = fmt.Sprintf(`bin startsWith "%d" && currency != "GBP"`, 400000+i)
			}
			rules[i] = fraud.Rule{Name: "r" + strconv.Itoa(i), When: w, Score: i%50 + 1}
		}
	}
	return entries, rules
}

// Inputs are 1,024 varied attributes at the given time and after, a
// minute apart: callers in national format (+447… after normalising,
// some listed), some listed sources, emails and customer ids, and three
// in four with a payment (a BIN, last four, amount, a card token).
func Inputs(at time.Time) []fraud.Attributes {
	in := make([]fraud.Attributes, 1024)
	for i := range in {
		a := fraud.Attributes{
			Caller: fmt.Sprintf("07%09d", i*37), Verstat: []string{"TN-Validation-Passed", "No-TN-Validation", ""}[i%3],
			Source: netip.AddrFrom4([4]byte{byte(11 + i%2), 0, byte(i), byte(i * 7)}), Route: "pay", Queue: "payments",
			Time: at.Add(time.Duration(i) * time.Minute),
			Data: map[string]string{"email": fmt.Sprintf("User%d@Example%d.com", i*5, (i*5)%97), "postcode": "ab1 2cd", "customer_id": "C" + strconv.Itoa(i*7), "tier": "t" + strconv.Itoa(i%13)},
		}
		if i%4 != 0 {
			a.Payment = &fraud.Payment{BIN: strconv.Itoa(40000000 + i*10 + 8), Last4: "1111", Amount: float64(i % 2000), Currency: "GBP", Country: "GB", CardToken: fmt.Sprintf("%064x", i)}
		}
		in[i] = a
	}
	return in
}
