package archive

import (
	"path/filepath"
	"strings"

	"github.com/cloak-voip/cloak/config"
)

// OptionsFrom turns the archive section of the configuration into Open's
// options: the DSN (empty: SQLite at DATA/cloak.db), the key (key_file,
// or DATA/archive.key, created on first start when create is set) and
// the participant-data policy.
func OptionsFrom(c config.Archive, dataDir string, create bool) (Options, error) {
	dsn := c.DSN
	if dsn == "" {
		dsn = filepath.Join(dataDir, "cloak.db")
	}
	keyFile := c.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, "archive.key")
	}
	key, err := LoadKey(keyFile, create && c.KeyFile == "")
	if err != nil {
		return Options{}, err
	}
	return Options{DSN: dsn, Key: key, Policy: PolicyFrom(c.Data)}, nil
}

// PolicyFrom is the participant-data policy archive.data configures.
func PolicyFrom(d config.ArchiveData) Policy {
	p := Policy{Default: KeyPolicy{Policy: d.Default, Visible: d.Visible}, Keys: map[string]KeyPolicy{}}
	for k, kp := range d.Keys {
		v := d.Visible
		if kp.Visible != nil {
			v = *kp.Visible
		}
		p.Keys[k] = KeyPolicy{Policy: kp.Policy, Visible: v}
	}
	// fraud_risk (call-arrival screening's mark) holds a score, entry
	// types and rule names, never a person's value: kept unless configured.
	if _, ok := p.Keys[FraudRiskKey]; !ok {
		p.Keys[FraudRiskKey] = KeyPolicy{Policy: Keep}
	}
	return p
}

// FraudRiskKey is the participant-data key of a call's fraud mark
// (call.DataFraudRisk).
const FraudRiskKey = "fraud_risk"

// Describe names the database of a DSN for logs without its password.
func Describe(dsn string) string {
	if strings.Contains(dsn, "://") {
		if i := strings.Index(dsn, "@"); i >= 0 {
			return dsn[:strings.Index(dsn, "://")+3] + "…" + dsn[i:]
		}
		return dsn
	}
	return "sqlite:" + strings.TrimPrefix(dsn, "sqlite:")
}
