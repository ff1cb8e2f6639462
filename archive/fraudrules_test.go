package archive

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cloak-voip/cloak/fraud"
)

// TestFraudRulesReplace: a load stores the set, a second one records
// exactly what changed (added, changed, removed) with who, source and
// version; an identical load changes nothing; a set with a rule that does
// not compile is refused naming it and the stored set stays; concurrent
// loads apply one after the other (distinct versions); every change is
// audited and the chain verifies.
func TestFraudRulesReplace(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if v, rules, err := s.Rules(ctx); err != nil || v != 0 || len(rules) != 0 {
			t.Fatalf("empty: %d %v %v", v, rules, err)
		}
		first := []fraud.Rule{
			{Name: "premium", When: `caller startsWith "+449"`, Score: 25},
			{Name: "big", When: "payment && amount > 500", Score: 60, Comment: "large"},
		}
		res, err := s.ReplaceRules(ctx, first, "cli:ops", "rules.yaml")
		if err != nil || res.Version != 1 || strings.Join(res.Added, ",") != "big,premium" {
			t.Fatalf("first load: %+v %v", res, err)
		}
		second := []fraud.Rule{
			{Name: "big", When: "payment && amount > 400", Score: 60, Comment: "large"},
			{Name: "busy", When: "calls_today > 2", Score: 50},
		}
		res, err = s.ReplaceRules(ctx, second, "user:alice", "rules2.yaml")
		if err != nil || res.Version != 2 || strings.Join(res.Added, ",") != "busy" || strings.Join(res.Changed, ",") != "big" ||
			strings.Join(res.Removed, ",") != "premium" {
			t.Fatalf("second load: %+v %v", res, err)
		}
		if res, err := s.ReplaceRules(ctx, second, "user:alice", "rules2.yaml"); err != nil || !res.Unchanged() || res.Version != 2 {
			t.Fatalf("identical load: %+v %v", res, err)
		}
		bad := append([]fraud.Rule{}, second...)
		bad = append(bad, fraud.Rule{Name: "typo", When: "amout > 1", Score: 5})
		_, err = s.ReplaceRules(ctx, bad, "cli:ops", "bad.yaml")
		if !errors.Is(err, fraud.ErrRule) || !strings.Contains(err.Error(), `rule "typo"`) {
			t.Fatalf("bad rule: %v", err)
		}
		if _, err := s.ReplaceRules(ctx, []fraud.Rule{{Name: "card", When: `bin == "4111111111111111"`, Score: 1}}, "cli:ops", "x"); !errors.Is(err, fraud.ErrRule) {
			t.Fatalf("a card number in a rule: %v", err)
		}
		v, rules, err := s.Rules(ctx)
		if err != nil || v != 2 || len(rules) != 2 || rules[0].Name != "big" || rules[0].When != "payment && amount > 400" || rules[1].Name != "busy" {
			t.Fatalf("after refused loads: %d %+v %v", v, rules, err)
		}
		hist, err := s.RulesHistory(ctx, 0)
		if err != nil || len(hist) != 5 {
			t.Fatalf("history %+v %v", hist, err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, h.Action+" "+h.Rule.Name+" "+h.Actor)
		}
		want := "removed premium user:alice|added busy user:alice|changed big user:alice|added big cli:ops|added premium cli:ops"
		if strings.Join(got, "|") != want && !sameSet(got, strings.Split(want, "|")) {
			t.Errorf("history %q, want %q", got, want)
		}
		if hist[0].Version != 2 || hist[len(hist)-1].Version != 1 || hist[0].Source != "rules2.yaml" || hist[0].Rule.When != `caller startsWith "+449"` {
			t.Errorf("history rows %+v", hist)
		}

		// Concurrent loads: each gets its own version.
		var wg sync.WaitGroup
		versions := make([]int64, 4)
		errs := make([]error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.ReplaceRules(ctx, []fraud.Rule{{Name: "n", When: "hour < " + string(rune('1'+i)), Score: i + 1}}, "cli:ops", "c")
				versions[i], errs[i] = r.Version, err
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i, v := range versions {
			if errs[i] != nil {
				t.Fatalf("concurrent load %d: %v", i, errs[i])
			}
			if seen[v] {
				t.Errorf("version %d twice: %v", v, versions)
			}
			seen[v] = true
		}
		if v, err := s.RulesVersion(ctx); err != nil || v != 6 {
			t.Errorf("version after 6 loads: %d %v", v, err)
		}
		log, err := s.AuditLog(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range log {
			if e.Action == ActionFraudRules {
				n++
			}
		}
		if n != 6 {
			t.Errorf("%d rules changes audited, want 6", n)
		}
		if rep, err := s.VerifyChain(ctx); err != nil || !rep.OK() {
			t.Errorf("audit chain %+v %v", rep, err)
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
