package config

import (
	"errors"
	"strings"
	"testing"
)

func TestFraudValidateNamesTheField(t *testing.T) {
	tests := []struct{ yaml, path string }{
		{"fraud:\n  minimum_score: 0\n", "fraud.minimum_score"},
		{"fraud:\n  route_minimum_scores: {pay: -5}\n", "fraud.route_minimum_scores.pay"},
		{"fraud:\n  default_scores: {iban: 5}\n", "fraud.default_scores.iban"},
		{"fraud:\n  default_scores: {phone: 2000000}\n", "fraud.default_scores.phone"},
		{"fraud:\n  default_country_code: \"044\"\n", "fraud.default_country_code"},
		{"fraud:\n  default_country_code: \"1234\"\n", "fraud.default_country_code"},
		{"fraud:\n  velocity_window: 1s\n", "fraud.velocity_window"},
		{"fraud:\n  time_zone: Mars/Olympus\n", "fraud.time_zone"},
		{"fraud:\n  enabled: true\n  rules_file: /nonexistent/rules.yaml\n", "fraud.rules_file"},
		{"fraud:\n  enabled: true\n  bin_table: /nonexistent/bins.csv\n", "fraud.bin_table"},
		{"fraud:\n  call: {minimum_score: 0}\n", "fraud.call.minimum_score"},
		{"fraud:\n  call: {route: block}\n", "fraud.call.route"},
		{"fraud:\n  call: {route: \"flow:\"}\n", "fraud.call.route"},
		{"fraud:\n  call: {route: \"queue:nowhere\"}\n", "fraud.call.route"},
		{"fraud:\n  call: {timeout: 1ms}\n", "fraud.call.timeout"},
		{"fraud:\n  call: {enabled: true}\n", "fraud.call.enabled"},
	}
	for _, tc := range tests {
		c, err := Parse(strings.NewReader(tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		err = c.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%q: err %v, want one naming %s", tc.yaml, err, tc.path)
		}
	}
	c := Default()
	if c.Fraud.Enabled || c.Fraud.MinimumScore != 100 || len(c.Fraud.DefaultScores) != len(FraudTypes) || c.Fraud.Call.Enabled || c.Fraud.Call.Route != "mark" {
		t.Fatalf("default fraud %+v", c.Fraud)
	}
	// A rules file that exists is fine, and a missing one is fine while
	// screening is off.
	c.Fraud.RulesFile = "/nonexistent"
	if err := c.Validate(); err != nil {
		t.Fatalf("disabled fraud with a missing file: %v", err)
	}
	c.Fraud.Enabled, c.Fraud.RulesFile = true, "../testdata/fraud/rules.yaml"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"reject", "flow:pay", "queue:payments", "mark"} {
		c.Fraud.Call.Enabled, c.Fraud.Call.Route = true, r
		if err := c.Validate(); err != nil {
			t.Errorf("fraud.call.route %s: %v", r, err)
		}
	}
}
