package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Trunk is a SIP trunk as carriers deliver them (docs/TRUNKS.md): a peer
// identified by its source address (an IP trunk) or by digest
// authentication of its INVITEs, and optionally one cloak registers to
// (a registration trunk), through which tel: targets leave.
type Trunk struct {
	// Name identifies the trunk in logs, the API, metrics and the call's
	// data: letters, digits, "-" and "_", at most 32.
	Name string `yaml:"name"`
	// Host is the carrier's SIP server, host[:port] (an IP or a DNS
	// name; port 5060, or 5061 for tls, when left out): where REGISTER,
	// OPTIONS and outbound INVITEs go, and, when Match is empty and Host
	// is an IP, the source inbound INVITEs are identified by.
	Host string `yaml:"host"`
	// Match lists the source networks (CIDRs or IPs) the carrier's
	// INVITEs come from. Empty means Host's IP (a DNS Host then matches no
	// source: use Match or inbound_auth).
	Match []string `yaml:"match"`
	// Transport is how cloak reaches Host: udp, tcp or tls.
	Transport string `yaml:"transport"`
	// Trusted takes the caller from P-Asserted-Identity (RFC 3325 §9.1):
	// the carrier is inside cloak's trust domain. Otherwise From's number
	// is the caller and P-Asserted-Identity is ignored.
	Trusted bool `yaml:"trusted"`
	// Auth are the trunk's digest credentials: what cloak answers the
	// carrier's challenges with (REGISTER, outbound INVITE) and, with
	// InboundAuth, what the carrier must present on its INVITEs.
	Auth TrunkAuth `yaml:"auth"`
	// InboundAuth challenges the carrier's INVITEs with digest (401,
	// RFC 3261 §22.2) and accepts them only with Auth's user and password.
	InboundAuth bool `yaml:"inbound_auth"`
	// Register is outbound registration (RFC 3261 §10) to Host.
	Register TrunkRegister `yaml:"register"`
	// Codecs is the codec order offered on outbound calls through the
	// trunk: PCMU, PCMA. Empty means cloak's default order.
	Codecs []string `yaml:"codecs"`
	// DTMF is how the carrier sends keys: rfc4733 (RFC 4733 events),
	// info (SIP INFO) or inband (tones). Empty means dtmf.mode.
	DTMF string `yaml:"dtmf"`
	// MaxCalls caps concurrent outbound calls through the trunk; beyond
	// it the trunk is skipped. 0 = no cap.
	MaxCalls int `yaml:"max_calls"`
	// OptionsInterval is how often cloak sends OPTIONS to Host (RFC 3261
	// §11) to mark the trunk up or down; a trunk down is skipped for
	// outbound calls. 0 = no keep-alive, the trunk is always up.
	OptionsInterval time.Duration `yaml:"options_interval"`
	// Numbers is how the carrier writes numbers, to normalise them to
	// E.164.
	Numbers TrunkNumbers `yaml:"numbers"`
	// Prefixes are the E.164 prefixes ("+44", "+1800"; "+" for any) of
	// the called numbers that leave through this trunk; the longest
	// matching prefix over all trunks wins, config order breaks ties.
	// Empty: no outbound calls through this trunk.
	Prefixes []string `yaml:"prefixes"`
}

// TrunkAuth are a trunk's digest credentials. At most one of Password,
// PasswordFile and PasswordEnv is set.
type TrunkAuth struct {
	// User is the digest username (and the user part of REGISTER's To).
	User string `yaml:"user"`
	// Password is the password in the file itself (prefer PasswordFile
	// or PasswordEnv). Never logged.
	Password Secret `yaml:"password"`
	// PasswordFile is a file holding the password (surrounding
	// whitespace ignored), read at start.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv is an environment variable holding the password, read
	// at start.
	PasswordEnv string `yaml:"password_env"`
	// Realm, when set, is the only realm cloak answers challenges of,
	// and the realm of InboundAuth's challenges (default "cloak").
	Realm string `yaml:"realm"`
}

// TrunkRegister is outbound registration to a trunk's Host.
type TrunkRegister struct {
	// Enabled turns registration on.
	Enabled bool `yaml:"enabled"`
	// Expires is the registration lifetime asked for (the carrier may
	// shorten it); refreshed at 85 % of what was granted. 0 means 1h.
	Expires time.Duration `yaml:"expires"`
	// OutboundProxy, host[:port], is where REGISTER (and the trunk's
	// other requests) are sent instead of Host (RFC 3261 §8.1.2); empty
	// means Host.
	OutboundProxy string `yaml:"outbound_proxy"`
}

// TrunkNumbers is how a carrier writes numbers.
type TrunkNumbers struct {
	// Country is the ISO 3166 region of national numbers ("GB", "US").
	Country string `yaml:"country"`
	// NationalPrefix is the trunk prefix of national numbers ("0");
	// empty means the country's own.
	NationalPrefix string `yaml:"national_prefix"`
	// InternationalPrefix is the prefix of international numbers ("00",
	// "011"); empty means the country's own.
	InternationalPrefix string `yaml:"international_prefix"`
}

// Secret is a string never printed: fmt, JSON and YAML show "***"
// (empty stays empty). Reveal returns the value.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Reveal returns the clear value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// ErrNoPassword is returned by ResolvePassword when no source is set or
// the one set is empty.
var ErrNoPassword = errors.New("no password")

// ResolvePassword returns the password from Password, PasswordFile or
// PasswordEnv. Errors never quote the password.
func (a TrunkAuth) ResolvePassword() (Secret, error) {
	switch {
	case a.PasswordFile != "":
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return "", fmt.Errorf("password_file: %w", pe.Err)
			}
			return "", fmt.Errorf("password_file: cannot read")
		}
		if p := strings.TrimSpace(string(b)); p != "" {
			return Secret(p), nil
		}
		return "", fmt.Errorf("password_file %s: %w", a.PasswordFile, ErrNoPassword)
	case a.PasswordEnv != "":
		if p := os.Getenv(a.PasswordEnv); p != "" {
			return Secret(p), nil
		}
		return "", fmt.Errorf("password_env %s: unset or empty: %w", a.PasswordEnv, ErrNoPassword)
	case a.Password != "":
		return a.Password, nil
	}
	return "", ErrNoPassword
}

// TrunkTransports are the values of trunks[].transport.
var TrunkTransports = []string{"udp", "tcp", "tls"}

// TrunkDTMFModes are the values of trunks[].dtmf ("" = dtmf.mode).
var TrunkDTMFModes = []string{"", "rfc4733", "info", "inband"}

// TrunkCodecs are the codecs trunks[].codecs may list.
var TrunkCodecs = []string{"PCMU", "PCMA"}

var (
	trunkNameRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	digitsRe      = regexp.MustCompile(`^[0-9]{0,6}$`)
	trunkPrefixRe = regexp.MustCompile(`^\+[0-9]{0,15}$`)
)

// ParseTrunkMatch parses one trunks[].match entry: a CIDR or an IP.
func ParseTrunkMatch(s string) (netip.Prefix, error) { return parsePrefix(s) }

// SplitTrunkHost splits a host[:port] value; port is 0 when absent.
func SplitTrunkHost(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("empty")
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("bad port in %q", s)
		}
		if h == "" {
			return "", 0, fmt.Errorf("no host in %q", s)
		}
		return h, n, nil
	}
	h := strings.Trim(s, "[]")
	if strings.ContainsAny(h, " /@;<>\"") {
		return "", 0, fmt.Errorf("not a host[:port]: %q", s)
	}
	return h, 0, nil
}

// validateTrunks checks trunks and sip.unknown.
func (c *Config) validateTrunks(bad func(path, format string, a ...any)) {
	for _, f := range []struct{ path, v string }{{"sip.unknown", c.SIP.Unknown}, {"sip.unknown_loopback", c.SIP.UnknownLoopback}} {
		if f.v != "reject" && f.v != "allow" {
			bad(f.path, "%q: want reject or allow", f.v)
		}
	}
	if c.SIP.InviteAuth != "users" && c.SIP.InviteAuth != "off" {
		bad("sip.invite_auth", "%q: want users or off", c.SIP.InviteAuth)
	}
	names := map[string]bool{}
	for i, t := range c.Trunks {
		p := fmt.Sprintf("trunks[%d]", i)
		switch {
		case !trunkNameRe.MatchString(t.Name):
			bad(p+".name", "%q: want 1-32 letters, digits, - or _", t.Name)
		case names[t.Name]:
			bad(p+".name", "trunk %q defined twice", t.Name)
		}
		names[t.Name] = true
		if t.Host != "" {
			if _, _, err := SplitTrunkHost(t.Host); err != nil {
				bad(p+".host", "%v", err)
			}
		}
		for j, m := range t.Match {
			if _, err := parsePrefix(m); err != nil {
				bad(fmt.Sprintf("%s.match[%d]", p, j), "not a CIDR or IP address: %q", m)
			}
		}
		if t.Host == "" && len(t.Match) == 0 && !t.InboundAuth {
			bad(p+".host", "a trunk needs a host, a match list or inbound_auth")
		}
		if t.Host == "" && (t.Register.Enabled || len(t.Prefixes) > 0 || t.OptionsInterval > 0) {
			bad(p+".host", "needed for register, prefixes and options_interval")
		}
		if !slices.Contains(TrunkTransports, t.Transport) {
			bad(p+".transport", "%q: want udp, tcp or tls", t.Transport)
		}
		if t.Transport == "tls" && !c.SIPTLSEnabled() {
			bad(p+".transport", "tls needs tls in sip.transports")
		}
		n := 0
		for _, set := range []bool{t.Auth.Password != "", t.Auth.PasswordFile != "", t.Auth.PasswordEnv != ""} {
			if set {
				n++
			}
		}
		if n > 1 {
			bad(p+".auth", "set one of password, password_file, password_env")
		}
		needAuth := t.Register.Enabled || t.InboundAuth
		if needAuth && t.Auth.User == "" {
			bad(p+".auth.user", "needed for register and inbound_auth")
		}
		if len(t.Auth.User) > 64 || strings.ContainsAny(t.Auth.User, " \"\\@:;<>\r\n") {
			bad(p+".auth.user", "%d bytes or characters not allowed in a digest username", len(t.Auth.User))
		}
		if n == 1 || needAuth {
			if _, err := t.Auth.ResolvePassword(); err != nil {
				bad(p+".auth.password", "%v", err)
			}
		}
		if e := t.Register.Expires; e != 0 && (e < 10*time.Second || e > 24*time.Hour) {
			bad(p+".register.expires", "%v: want 0 (1h) or 10s to 24h", e)
		}
		if t.Register.OutboundProxy != "" {
			if _, _, err := SplitTrunkHost(t.Register.OutboundProxy); err != nil {
				bad(p+".register.outbound_proxy", "%v", err)
			}
		}
		for j, cd := range t.Codecs {
			if !slices.Contains(TrunkCodecs, cd) || slices.Index(t.Codecs, cd) != j {
				bad(fmt.Sprintf("%s.codecs[%d]", p, j), "%q: want PCMU or PCMA, once each", cd)
			}
		}
		if !slices.Contains(TrunkDTMFModes, t.DTMF) {
			bad(p+".dtmf", "%q: want rfc4733, info or inband", t.DTMF)
		}
		if t.MaxCalls < 0 {
			bad(p+".max_calls", "must not be negative")
		}
		if o := t.OptionsInterval; o != 0 && (o < time.Second || o > time.Hour) {
			bad(p+".options_interval", "%v: want 0 (off) or 1s to 1h", o)
		}
		if t.Numbers.Country == "" {
			bad(p+".numbers.country", "needed: the ISO 3166 region of national numbers (GB, US, ...)")
		} else if phonenumbers.GetCountryCodeForRegion(t.Numbers.Country) == 0 {
			bad(p+".numbers.country", "%q is not a region libphonenumber knows", t.Numbers.Country)
		}
		if !digitsRe.MatchString(t.Numbers.NationalPrefix) {
			bad(p+".numbers.national_prefix", "%q: want up to 6 digits", t.Numbers.NationalPrefix)
		}
		if !digitsRe.MatchString(t.Numbers.InternationalPrefix) {
			bad(p+".numbers.international_prefix", "%q: want up to 6 digits", t.Numbers.InternationalPrefix)
		}
		for j, pre := range t.Prefixes {
			if !trunkPrefixRe.MatchString(pre) {
				bad(fmt.Sprintf("%s.prefixes[%d]", p, j), "%q: want + and up to 15 digits", pre)
			}
		}
	}
}
