package fraud

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestRulesRefusedWithNameAndPosition(t *testing.T) {
	src := `rules:
  - name: ok
    when: payment && amount > 100
    score: 10
  - name: typo
    when: payment && amout > 100
    score: 10
  - name: mistyped
    when: amount > "100"
    score: 10
  - name: not-bool
    when: amount + 1
    score: 10
  - name: ok
    when: "true"
    score: 1
  - name: huge
    when: "true"
    score: 9999999
`
	_, err := ParseRules("r.yaml", strings.NewReader(src))
	if !errors.Is(err, ErrRule) {
		t.Fatalf("err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`r.yaml:5: rule "typo" at line 1 column 12 of when: unknown name amout`,
		`r.yaml:8: rule "mistyped" at line 1 column`,
		`r.yaml:11: rule "not-bool"`,
		`r.yaml:14: rule "ok": duplicate name`,
		`r.yaml:17: rule "huge": score`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	var re *RuleError
	if !errors.As(err, &re) || re.Name != "typo" {
		t.Errorf("first RuleError %+v", re)
	}
	if _, err := ParseRules("u.yaml", strings.NewReader("rules:\n  - name: a\n    when: \"true\"\n    scroe: 1\n")); !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), "scroe") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := ParseRules("u.yaml", strings.NewReader("rulez: []\n")); !errors.Is(err, ErrRule) {
		t.Errorf("unknown top field: %v", err)
	}
}

func TestRuleOperators(t *testing.T) {
	env := Env{Caller: "+447700900123", Verstat: "No-TN-Validation", Amount: 750, Payment: true, BIN: "411111",
		Country: "NG", Email: "x@mailinator.com", Hour: 3, CardsCaller: 4, Data: map[string]string{"tier": "gold"}}
	cases := map[string]bool{
		`payment && !verified && amount >= 500`:                     true,
		`payment and not verified and amount >= 1000`:               false,
		`caller startsWith "+4477009"`:                              true,
		`caller startsWith "+1"`:                                    false,
		`country in ["NG", "GH"]`:                                   true,
		`country not in ["NG"] or hour < 6`:                         true,
		`email matches "@(mailinator|guerrillamail)\\.com$"`:        true,
		`cards_caller >= 3`:                                         true,
		`data["tier"] == "gold" && (bin == "411111" || amount < 1)`: true,
		`data["missing"] == "x"`:                                    false,
	}
	var rules []Rule
	for w := range cases {
		rules = append(rules, Rule{Name: w, When: w, Score: 1})
	}
	set, err := Compile("t", rules)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	set.Eval(&env, func(r *Rule) { got[r.Name] = true }, func(r *Rule, err error) { t.Errorf("%s: %v", r.Name, err) })
	for w, want := range cases {
		if got[w] != want {
			t.Errorf("%s = %v, want %v", w, got[w], want)
		}
	}
}

func TestLoadRulesDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "rules:\n  - {name: one, when: \"amount > 1\", score: 5}\n")
	write("b.yml", "rules:\n  - {name: two, when: \"hour < 6\", score: 5}\n")
	write("notes.txt", "not rules")
	set, err := LoadRules(dir)
	if err != nil || set.Len() != 2 {
		t.Fatalf("%v %v", set, err)
	}
	write("c.yaml", "rules:\n  - {name: one, when: \"true\", score: 1}\n")
	if _, err := LoadRules(dir); err == nil || !strings.Contains(err.Error(), "c.yaml:2") || !strings.Contains(err.Error(), "a.yaml") {
		t.Fatalf("duplicate across files: %v", err)
	}
	if _, err := LoadRules(filepath.Join(dir, "none.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// TestEnvFillCoversEveryField: every Env field reaches the rules' map with
// its own value and type (a field added to Env but not to fill fails here).
func TestEnvFillCoversEveryField(t *testing.T) {
	var e Env
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("s" + strconv.Itoa(i))
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k": strconv.Itoa(i)}))
		default:
			t.Fatalf("field %s: kind %s not covered", v.Type().Field(i).Name, f.Kind())
		}
	}
	m := map[string]any{}
	e.fill(m)
	if len(m) != v.NumField() || len(envSample) != v.NumField() {
		t.Fatalf("fill wrote %d keys, sample %d, Env has %d fields", len(m), len(envSample), v.NumField())
	}
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("expr")
		if !reflect.DeepEqual(m[tag], v.Field(i).Interface()) {
			t.Errorf("%s: fill gave %v, want %v", tag, m[tag], v.Field(i).Interface())
		}
	}
}

// TestDisabledRulesDoNotMatch: in the one-program path and the per-rule
// fallback alike.
func TestDisabledRulesDoNotMatch(t *testing.T) {
	for _, fail := range []bool{false, true} {
		rules := []Rule{{Name: "on", When: "true", Score: 1}, {Name: "off", When: "true", Score: 1, Disabled: true}}
		if fail {
			rules = append(rules, Rule{Name: "boom", When: `int(data["n"]) > 0`, Score: 1})
		}
		set, err := Compile("t", rules)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		var failed []string
		set.Eval(&Env{}, func(r *Rule) { got = append(got, r.Name) }, func(r *Rule, _ error) { failed = append(failed, r.Name) })
		if len(got) != 1 || got[0] != "on" {
			t.Errorf("fail=%v: matched %v", fail, got)
		}
		if fail != (len(failed) == 1) {
			t.Errorf("fail=%v: failed %v", fail, failed)
		}
	}
}
