package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Archive configures the interaction archive (docs/ARCHIVE.md): general
// information, participant data, secure-segment markers, flow traces, the
// recordings index and the audit log of every finished call.
type Archive struct {
	// Enabled keeps finished interactions in the archive.
	Enabled bool `yaml:"enabled"`
	// DSN says which database: empty means SQLite at DATA/cloak.db;
	// "sqlite:PATH" SQLite at PATH; "postgres://…" (or "postgresql://…")
	// a PostgreSQL database several nodes may share.
	DSN string `yaml:"dsn"`
	// KeyFile holds the HMAC-SHA256 key of participant-data tokens and
	// audit signatures. Empty means DATA/archive.key, created (mode 0600)
	// on first start. Losing it makes masked values unsearchable and the
	// audit unverifiable.
	KeyFile string `yaml:"key_file"`
	// Queue is how many finished interactions wait for the writer before
	// new ones are dropped (counted, logged once per incident): a slow or
	// down database delays archiving, never a call. 16 to 1 000 000.
	Queue int `yaml:"queue"`
	// Batch is the most interactions written in one transaction, 1 to 10 000.
	Batch int `yaml:"batch"`
	// Retention is how long each kind of content is kept.
	Retention Retention `yaml:"retention"`
	// PurgeAt is the local time of day ("HH:MM") serve runs the
	// retention purge (cloak archive purge does it by hand).
	PurgeAt string `yaml:"purge_at"`
	// Data is the participant-data policy.
	Data ArchiveData `yaml:"data"`
	// ChannelData copies headers of a call's INVITE into its participant
	// data, each under its key and that key's policy (archive.data): shown
	// to the agent's API during the call, masked, kept or dropped when it
	// ends, found by `search -data KEY=VALUE`. A value longer than 256
	// bytes, with a control character or holding a possible card number is
	// refused (logged without the value). Empty by default.
	ChannelData []ChannelData `yaml:"channel_data"`
}

// ChannelData is one SIP header kept as participant data.
type ChannelData struct {
	// Header is the SIP header's name (a token, RFC 3261 §25.1), matched
	// without regard to case, e.g. X-Customer-Id. Credentials
	// (Authorization, Proxy-Authorization) cannot be chosen.
	Header string `yaml:"header"`
	// Key is the participant-data key: letters, digits, '_', '-' or '.',
	// at most 64; unique; not a key cloak sets itself (trunk,
	// called_number, diverted_from) nor one that names a secret (card,
	// pan, cvv, pin, password…).
	Key string `yaml:"key"`
}

// Retention is how long the archive keeps each content type: a number
// of days ("180d"), or a Go duration ("36h"); "0" keeps it forever.
type Retention struct {
	// Interactions: general information, with its participant data,
	// trace and audit rows.
	Interactions string `yaml:"interactions"`
	// Recordings: the WAV and its sidecar (the interaction is kept).
	Recordings string `yaml:"recordings"`
	// ParticipantData: participant data (masked or kept values).
	ParticipantData string `yaml:"participant_data"`
	// Traces: flow execution traces.
	Traces string `yaml:"traces"`
}

// Participant-data policies (archive.data).
const (
	DataKeep          = "keep"            // stored as it is
	DataMaskAfterCall = "mask_after_call" // stored as a mask plus a search token
	DataDropAfterCall = "drop_after_call" // not stored
)

// DataPolicies are the values of archive.data.default and .keys.*.policy.
var DataPolicies = []string{DataKeep, DataMaskAfterCall, DataDropAfterCall}

// ArchiveData is the participant-data policy: what becomes of each key's
// value when the interaction ends. During the call the value is visible
// to the agent's API as it is; the archive only ever stores what the
// policy leaves.
type ArchiveData struct {
	// Default is the policy of keys not listed: keep, mask_after_call
	// (the stored value becomes "****" plus its last Visible characters,
	// with an HMAC-SHA256 token so a search by the exact value still
	// finds it) or drop_after_call.
	Default string `yaml:"default"`
	// Visible is how many trailing characters a mask shows, 0 to 8.
	Visible int `yaml:"visible"`
	// Keys sets the policy per key.
	Keys map[string]DataKey `yaml:"keys"`
}

// DataKey is one participant-data key's policy.
type DataKey struct {
	// Policy is keep, mask_after_call or drop_after_call.
	Policy string `yaml:"policy"`
	// Visible overrides archive.data.visible for this key (nil: inherit).
	Visible *int `yaml:"visible"`
}

// DefaultArchive is the archive section of Default().
func DefaultArchive() Archive {
	return Archive{
		Enabled: true, Queue: 10000, Batch: 256, PurgeAt: "03:00",
		Retention: Retention{Interactions: "180d", Recordings: "14d", ParticipantData: "180d", Traces: "30d"},
		Data:      ArchiveData{Default: DataMaskAfterCall, Visible: 2},
	}
}

// ParseRetention parses a retention: "0" (forever, returned as 0), a
// whole number of days ("14d"), or a positive Go duration ("36h").
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("want a number of days from 1 to 36500 before d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, fmt.Errorf("want 0 (forever), days (180d) or a duration (36h), got %q", s)
	}
	return dur, nil
}

// ArchiveEngine returns the database engine of a DSN: "sqlite" or
// "postgres".
func ArchiveEngine(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

// validate appends the archive section's problems through bad.
func (a *Archive) validate(bad func(path, format string, args ...any)) {
	switch {
	case a.DSN == "":
	case ArchiveEngine(a.DSN) == "postgres":
		if _, err := url.Parse(a.DSN); err != nil {
			bad("archive.dsn", "not a postgres:// URL") // the error would echo a password
		}
	case strings.HasPrefix(a.DSN, "sqlite:"):
		if strings.TrimPrefix(a.DSN, "sqlite:") == "" {
			bad("archive.dsn", "sqlite: needs a path")
		}
	default:
		bad("archive.dsn", "want empty (SQLite in the data dir), sqlite:PATH or postgres://…")
	}
	if a.Queue < 16 || a.Queue > 1_000_000 {
		bad("archive.queue", "want 16 to 1000000, got %d", a.Queue)
	}
	if a.Batch < 1 || a.Batch > 10_000 {
		bad("archive.batch", "want 1 to 10000, got %d", a.Batch)
	}
	for path, v := range map[string]string{
		"archive.retention.interactions": a.Retention.Interactions, "archive.retention.recordings": a.Retention.Recordings,
		"archive.retention.participant_data": a.Retention.ParticipantData, "archive.retention.traces": a.Retention.Traces,
	} {
		if _, err := ParseRetention(v); err != nil {
			bad(path, "%v", err)
		}
	}
	if _, err := time.Parse("15:04", a.PurgeAt); err != nil {
		bad("archive.purge_at", "want HH:MM, got %q", a.PurgeAt)
	}
	if !validDataPolicy(a.Data.Default) {
		bad("archive.data.default", "unknown policy %q (want %s)", a.Data.Default, strings.Join(DataPolicies, ", "))
	}
	if a.Data.Visible < 0 || a.Data.Visible > 8 {
		bad("archive.data.visible", "want 0 to 8, got %d", a.Data.Visible)
	}
	a.validateChannelData(bad)
	for k, p := range a.Data.Keys {
		if k == "" {
			bad("archive.data.keys", "empty key")
		}
		if !validDataPolicy(p.Policy) {
			bad("archive.data.keys."+k+".policy", "unknown policy %q (want %s)", p.Policy, strings.Join(DataPolicies, ", "))
		}
		if p.Visible != nil && (*p.Visible < 0 || *p.Visible > 8) {
			bad("archive.data.keys."+k+".visible", "want 0 to 8, got %d", *p.Visible)
		}
	}
}

// reservedDataKeys are participant-data keys cloak sets itself: a header
// must not pose as them.
var reservedDataKeys = map[string]bool{"trunk": true, "called_number": true, "diverted_from": true}

// secretWords are words of a key name that say it holds a secret, which
// never reaches participant data.
var secretWords = map[string]bool{"card": true, "pan": true, "cvv": true, "cvv2": true, "cvc": true, "cvc2": true,
	"pin": true, "passcode": true, "password": true, "passwd": true, "secret": true, "expiry": true, "otp": true, "iban": true}

// credentialHeaders are headers a channel_data entry may not copy.
var credentialHeaders = map[string]bool{"authorization": true, "proxy-authorization": true}

// sipToken reports whether s is a token (RFC 3261 §25.1).
func sipToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// validChannelKey reports whether k is fit for a participant-data key.
func validChannelKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// secretLooking reports whether one of k's words (split at '_', '-', '.')
// names a secret.
func secretLooking(k string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(k), func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// validateChannelData appends archive.channel_data's problems through bad.
func (a *Archive) validateChannelData(bad func(path, format string, args ...any)) {
	keys := map[string]bool{}
	for i, cd := range a.ChannelData {
		path := fmt.Sprintf("archive.channel_data[%d]", i)
		switch {
		case !sipToken(cd.Header):
			bad(path+".header", "want a SIP header name (a token of at most 64 characters), got %q", cd.Header)
		case credentialHeaders[strings.ToLower(cd.Header)]:
			bad(path+".header", "%s carries credentials and is never kept", cd.Header)
		}
		switch {
		case !validChannelKey(cd.Key):
			bad(path+".key", "want letters, digits, '_', '-' or '.' (at most 64), got %q", cd.Key)
		case reservedDataKeys[cd.Key]:
			bad(path+".key", "%q is set by cloak itself", cd.Key)
		case secretLooking(cd.Key):
			bad(path+".key", "%q names a secret; secrets never reach participant data", cd.Key)
		case keys[cd.Key]:
			bad(path+".key", "%q is used twice", cd.Key)
		}
		keys[cd.Key] = true
	}
}

func validDataPolicy(p string) bool {
	for _, q := range DataPolicies {
		if p == q {
			return true
		}
	}
	return false
}
