package config

import (
	"os"
	"slices"
	"strings"
	"time"
)

// Fraud configures fraud screening of phone payments and calls
// (docs/FRAUD.md).
type Fraud struct {
	// Enabled turns screening on. Off by default: a demo needs no fraud
	// data.
	Enabled bool `yaml:"enabled"`
	// MinimumScore: a payment whose total score (the sum over unique
	// matches of static data and rules) is at or above it is held. At
	// least 1.
	MinimumScore int `yaml:"minimum_score"`
	// RouteMinimumScores override MinimumScore per route (called user
	// part).
	RouteMinimumScores map[string]int `yaml:"route_minimum_scores"`
	// DefaultScores is each static entry type's score for entries added
	// without one: phone, email, postcode, extended_postcode, customer_id,
	// bin, source. A type not listed scores 0.
	DefaultScores map[string]int `yaml:"default_scores"`
	// RulesFile is a YAML rules file, or a directory of them, that seeds
	// the rules in the database when it has never held any (afterwards
	// `cloak fraud rules load` changes them); empty seeds nothing.
	RulesFile string `yaml:"rules_file"`
	// BINTable is a CSV file "bin,brand,country" giving a payment's card
	// brand and country from its BIN; empty means none.
	BINTable string `yaml:"bin_table"`
	// DefaultCountryCode is the country calling code (E.164, 1 to 3
	// digits) given to national numbers when normalising them
	// ("07700 900123" → +447700900123).
	DefaultCountryCode string `yaml:"default_country_code"`
	// VelocityWindow is how far back payment velocity counts (payments,
	// declines, distinct cards per caller): 1m to 744h.
	VelocityWindow time.Duration `yaml:"velocity_window"`
	// TimeZone is the IANA zone of the rules' hour and weekday and of
	// "calls today".
	TimeZone string `yaml:"time_zone"`
	// Call screens each call at arrival (needs enabled).
	Call FraudCall `yaml:"call"`
}

// FraudCall configures the screening of a call at arrival: after
// admission, before the call is answered and its route starts, the same
// static data and rules (with payment false) score the caller's number,
// verstat, source, trunk, route, time of day and calls_today.
type FraudCall struct {
	// Enabled screens calls at arrival. Off by default. With fraud.enabled
	// every arrival is recorded for calls_today even when this is off.
	Enabled bool `yaml:"enabled"`
	// MinimumScore: a call whose total score is at or above it takes
	// route. At least 1.
	MinimumScore int `yaml:"minimum_score"`
	// Route is what a call at or above minimum_score gets: "mark" (the
	// interaction is marked, nothing else), "reject" (603 Decline),
	// "flow:NAME" (that flow instead of its route) or "queue:NAME" (that
	// queue). Every screened call with a match is marked (fraud_risk).
	Route string `yaml:"route"`
	// Timeout bounds how long answering waits for the screening: past it
	// the call proceeds unscreened (counted and logged). 10ms to 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// FraudCallRoutes are the fixed values of fraud.call.route.
var FraudCallRoutes = []string{"mark", "reject"}

// FraudTypes are the static entry types default_scores may name.
var FraudTypes = []string{"phone", "email", "postcode", "extended_postcode", "customer_id", "bin", "source"}

// maxFraudScore bounds a score's magnitude.
const maxFraudScore = 1_000_000

// defaultFraud is Default()'s fraud section.
func defaultFraud() Fraud {
	return Fraud{
		MinimumScore: 100,
		DefaultScores: map[string]int{"phone": 100, "email": 60, "postcode": 30, "extended_postcode": 50,
			"customer_id": 80, "bin": 40, "source": 60},
		DefaultCountryCode: "44",
		VelocityWindow:     24 * time.Hour,
		TimeZone:           "UTC",
		Call:               FraudCall{MinimumScore: 100, Route: "mark", Timeout: 300 * time.Millisecond},
	}
}

func (c *Config) validateFraud(bad func(path, format string, a ...any)) {
	f := &c.Fraud
	if f.MinimumScore < 1 || f.MinimumScore > maxFraudScore {
		bad("fraud.minimum_score", "%d: want 1 to %d", f.MinimumScore, maxFraudScore)
	}
	for r, v := range f.RouteMinimumScores {
		if v < 1 || v > maxFraudScore {
			bad("fraud.route_minimum_scores."+r, "%d: want 1 to %d", v, maxFraudScore)
		}
	}
	for t, v := range f.DefaultScores {
		if !slices.Contains(FraudTypes, t) {
			bad("fraud.default_scores."+t, "unknown type (want one of %v)", FraudTypes)
		} else if v < -maxFraudScore || v > maxFraudScore {
			bad("fraud.default_scores."+t, "%d: want -%d to %d", v, maxFraudScore, maxFraudScore)
		}
	}
	cc := f.DefaultCountryCode
	if cc != "" && (len(cc) > 3 || cc[0] == '0' || !allDigits(cc)) {
		bad("fraud.default_country_code", "%q: want a country calling code, 1 to 3 digits (e.g. 44)", cc)
	}
	if f.VelocityWindow < time.Minute || f.VelocityWindow > 744*time.Hour {
		bad("fraud.velocity_window", "%v: want 1m to 744h", f.VelocityWindow)
	}
	if _, err := time.LoadLocation(f.TimeZone); err != nil || f.TimeZone == "" {
		bad("fraud.time_zone", "%q: not an IANA time zone", f.TimeZone)
	}
	fc := &f.Call
	if fc.MinimumScore < 1 || fc.MinimumScore > maxFraudScore {
		bad("fraud.call.minimum_score", "%d: want 1 to %d", fc.MinimumScore, maxFraudScore)
	}
	if name, ok := strings.CutPrefix(fc.Route, "flow:"); ok && name == "" {
		bad("fraud.call.route", "%q: flow: needs a flow name", fc.Route)
	} else if name, ok := strings.CutPrefix(fc.Route, "queue:"); ok {
		if !slices.ContainsFunc(c.Queues, func(q Queue) bool { return q.Name == name }) {
			bad("fraud.call.route", "%q: no queue %q in queues", fc.Route, name)
		}
	} else if !ok && !strings.HasPrefix(fc.Route, "flow:") && !slices.Contains(FraudCallRoutes, fc.Route) {
		bad("fraud.call.route", "%q: want mark, reject, flow:NAME or queue:NAME", fc.Route)
	}
	if fc.Timeout < 10*time.Millisecond || fc.Timeout > 5*time.Second {
		bad("fraud.call.timeout", "%v: want 10ms to 5s", fc.Timeout)
	}
	if fc.Enabled && !f.Enabled {
		bad("fraud.call.enabled", "needs fraud.enabled")
	}
	if f.Enabled {
		for path, file := range map[string]string{"fraud.rules_file": f.RulesFile, "fraud.bin_table": f.BINTable} {
			if file == "" {
				continue
			}
			if _, err := os.Stat(file); err != nil {
				bad(path, "%v", err)
			}
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
