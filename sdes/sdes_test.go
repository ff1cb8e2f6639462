package sdes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// key30 is a 30-byte key||salt in base64 (RFC 4568 §9.1's example key).
const key30 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

func TestParseCrypto(t *testing.T) {
	gcm := "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0" // 24 bytes: too short for GCM (28)
	gcm28 := "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3OA=="
	for _, tc := range []struct {
		in    string
		suite Suite
		tag   int
		err   error
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, AESCM128HMACSHA1_80, 1, nil},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key30, AESCM128HMACSHA1_32, 2, nil},
		{"3 aes_cm_128_hmac_sha1_80 INLINE:" + key30 + "|2^48", AESCM128HMACSHA1_80, 3, nil},
		{"4 AEAD_AES_128_GCM inline:" + gcm28, AEADAES128GCM, 4, nil},
		{"4 AEAD_AES_128_GCM inline:" + gcm, 0, 0, ErrCrypto},
		{"5 AEAD_AES_128_GCM inline:" + strings.TrimRight(gcm28, "="), AEADAES128GCM, 5, nil}, // unpadded
		{"0 AEAD_AES_128_GCM inline:00", 0, 0, ErrCrypto},                                     // FuzzParseCrypto: it panicked
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + key30, 0, 0, ErrCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:32", 0, 0, ErrUnsupported}, // RFC 4568 §9.1's example
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", 0, 0, ErrUnsupported},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^31", 0, 0, ErrUnsupported},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=1", 0, 0, ErrUnsupported},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, 0, 0, ErrUnsupported},
		{"1 F8_128_HMAC_SHA1_80 inline:" + key30, 0, 0, ErrUnsupported},
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, 0, 0, ErrUnsupported},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:" + key30, 0, 0, ErrUnsupported},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!", 0, 0, ErrCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30[:20], 0, 0, ErrCrypto},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, 0, 0, ErrCrypto},
		{"-1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, 0, 0, ErrCrypto},
		{"1 AES_CM_128_HMAC_SHA1_80", 0, 0, ErrCrypto},
		{"", 0, 0, ErrCrypto},
	} {
		c, err := ParseCrypto(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err %v, want %v", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), key30[:12]) {
				t.Errorf("%q: error quotes the key: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.Key.Suite() != tc.suite || c.Tag != tc.tag {
			t.Errorf("%q: suite %v tag %d", tc.in, c.Key.Suite(), c.Tag)
		}
		k, s := c.Key.Material()
		if len(k) != tc.suite.KeyLen() || len(s) != tc.suite.SaltLen() {
			t.Errorf("%q: key %d salt %d bytes", tc.in, len(k), len(s))
		}
	}
}

func TestCryptoAttrRoundTrip(t *testing.T) {
	for _, s := range Suites {
		k, err := NewKey(s)
		if err != nil {
			t.Fatal(err)
		}
		c := Crypto{Tag: 7, Key: k}
		back, err := ParseCrypto(c.Attr())
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if back.Tag != 7 || !back.Key.Equal(k) {
			t.Errorf("%v: round trip changed the attribute", s)
		}
		k2, _ := NewKey(s)
		if k2.Equal(k) {
			t.Errorf("%v: two fresh keys are equal", s)
		}
	}
}

// TestKeyNeverPrinted: every way a key can reach a log line or a JSON
// body prints the mask.
func TestKeyNeverPrinted(t *testing.T) {
	c, err := ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	lg := zerolog.New(&logBuf)
	lg.Info().Object("key", c.Key).Interface("k", c.Key).Stringer("c", c).Msg("x")
	js, _ := json.Marshal(struct{ K *Key }{c.Key})
	outs := []string{fmt.Sprint(c.Key), fmt.Sprintf("%v %+v %#v %s", c.Key, c, c, c), c.String(), string(js), logBuf.String()}
	for _, o := range outs {
		if strings.Contains(o, key30[:10]) {
			t.Errorf("key printed: %s", o)
		}
	}
	if !strings.Contains(c.Attr(), key30) {
		t.Errorf("Attr lost the key")
	}
}

func TestKeyZero(t *testing.T) {
	k, _ := NewKey(AESCM128HMACSHA1_80)
	key, salt := k.Material()
	k.Zero()
	if !k.IsZero() {
		t.Error("zeroed key is not zero")
	}
	for _, b := range append(key, salt...) {
		if b != 0 {
			t.Fatal("key bytes survive Zero")
		}
	}
	var nilKey *Key
	nilKey.Zero() // no panic
	if !nilKey.IsZero() {
		t.Error("nil key is not zero")
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:32")
	f.Add("1 AEAD_AES_128_GCM inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3OA==")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCrypto(s)
		if err == nil {
			k, salt := c.Key.Material()
			if len(k) != c.Key.Suite().KeyLen() || len(salt) != c.Key.Suite().SaltLen() {
				t.Fatalf("accepted a key of %d+%d bytes", len(k), len(salt))
			}
		}
	})
}

// TestParseOrder: a suite list keeps its order; empty, unknown or
// repeated names are refused; the zero Order is Suites (GCM first).
func TestParseOrder(t *testing.T) {
	o, err := ParseOrder([]string{"aes_cm_128_hmac_sha1_32", "AEAD_AES_128_GCM"})
	if err != nil || !slices.Equal(o.Suites(), []Suite{AESCM128HMACSHA1_32, AEADAES128GCM}) {
		t.Fatalf("ParseOrder: %v %v", o.Suites(), err)
	}
	for _, bad := range [][]string{nil, {"F8_128_HMAC_SHA1_80"}, {"AEAD_AES_128_GCM", "AEAD_AES_128_GCM"},
		{"AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80"}} {
		if _, err := ParseOrder(bad); !errors.Is(err, ErrOrder) {
			t.Errorf("ParseOrder(%q): %v", bad, err)
		}
	}
	if got := (Order{}).Suites(); !slices.Equal(got, Suites) || got[0] != AEADAES128GCM {
		t.Errorf("zero Order: %v", got)
	}
}
