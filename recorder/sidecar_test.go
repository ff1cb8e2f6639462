package recorder

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// recordSigned writes a 1 s recording with one secure pause and returns
// the WAV path.
func recordSigned(t *testing.T, key []byte) string {
	t.Helper()
	c := newFakeClock()
	r, _ := newTest(t, c, func(cfg *Config) { cfg.Key = key })
	for i := range 50 {
		switch i {
		case 10:
			_ = r.Pause(ReasonSecure)
		case 30:
			_ = r.Resume(ReasonSecure)
		}
		r.WriteCaller(frameOf(int16(100 + i)))
		r.WriteAgent(frameOf(int16(-100 - i)))
		c.Advance(FrameDuration)
	}
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res.WAV
}

// editSidecar rewrites the sidecar of wav through f.
func editSidecar(t *testing.T, wav string, f func(*Sidecar)) {
	t.Helper()
	s, err := ReadSidecar(wav)
	if err != nil {
		t.Fatal(err)
	}
	f(&s)
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SidecarPath(wav), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyHappyPath(t *testing.T) {
	wav := recordSigned(t, testKey)
	rep, err := Verify(wav, testKey)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.Signed || len(rep.Sidecar.Markers) != 1 || rep.Sidecar.Markers[0].StartMS != 200 || rep.Sidecar.Markers[0].EndMS != 600 {
		t.Errorf("report %+v", rep)
	}
	if rep.AudioSHA256 != rep.Sidecar.SHA256 {
		t.Errorf("audio hash %s, sidecar %s", rep.AudioSHA256, rep.Sidecar.SHA256)
	}
}

func TestVerifyFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, wav string)
		key  []byte
		want error
	}{
		{
			name: "pause window moved",
			edit: func(t *testing.T, wav string) {
				editSidecar(t, wav, func(s *Sidecar) { s.Markers[0].EndMS = 300 })
			},
			key: testKey, want: ErrMarkersChanged,
		},
		{
			name: "pause marker removed",
			edit: func(t *testing.T, wav string) {
				editSidecar(t, wav, func(s *Sidecar) { s.Markers = nil })
			},
			key: testKey, want: ErrMarkersChanged,
		},
		{
			name: "pause window moved and digests recomputed without the key",
			edit: func(t *testing.T, wav string) {
				editSidecar(t, wav, func(s *Sidecar) {
					s.Markers[0].StartMS = 400
					h := s.HMAC
					s.seal(nil)
					s.HMAC = h
				})
			},
			key: testKey, want: ErrWrongKey,
		},
		{
			name: "duration edited",
			edit: func(t *testing.T, wav string) {
				editSidecar(t, wav, func(s *Sidecar) { s.DurationMS = 900 })
			},
			key: testKey, want: ErrSidecarChanged,
		},
		{
			name: "one audio byte changed",
			edit: func(t *testing.T, wav string) {
				b, err := os.ReadFile(wav)
				if err != nil {
					t.Fatal(err)
				}
				b[wavHeaderSize+1000] ^= 0x01
				if err := os.WriteFile(wav, b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			key: testKey, want: ErrAudioChanged,
		},
		{
			name: "audio and hash replaced together",
			edit: func(t *testing.T, wav string) {
				b, _ := os.ReadFile(wav)
				b[wavHeaderSize+1000] ^= 0x01
				if err := os.WriteFile(wav, b, 0o600); err != nil {
					t.Fatal(err)
				}
				sum, _ := fileSHA256(wav)
				editSidecar(t, wav, func(s *Sidecar) {
					s.SHA256 = sum
					h := s.HMAC
					s.seal(nil)
					s.HMAC = h
				})
			},
			key: testKey, want: ErrWrongKey,
		},
		{
			name: "wrong key",
			edit: func(*testing.T, string) {},
			key:  []byte("another-key"), want: ErrWrongKey,
		},
		{
			name: "no key for a signed recording",
			edit: func(*testing.T, string) {},
			key:  nil, want: ErrNoKey,
		},
		{
			name: "signature stripped",
			edit: func(t *testing.T, wav string) {
				editSidecar(t, wav, func(s *Sidecar) { s.HMAC = "" })
			},
			key: testKey, want: ErrUnsigned,
		},
		{
			name: "sidecar missing",
			edit: func(t *testing.T, wav string) {
				if err := os.Remove(SidecarPath(wav)); err != nil {
					t.Fatal(err)
				}
			},
			key: testKey, want: ErrMissingSidecar,
		},
		{
			name: "sidecar not json",
			edit: func(t *testing.T, wav string) {
				if err := os.WriteFile(SidecarPath(wav), []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			key: testKey, want: ErrBadSidecar,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wav := recordSigned(t, testKey)
			if _, err := Verify(wav, testKey); err != nil {
				t.Fatalf("before the edit: %v", err)
			}
			tc.edit(t, wav)
			_, err := Verify(wav, tc.key)
			if !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyUnsigned(t *testing.T) {
	wav := recordSigned(t, nil)
	rep, err := Verify(wav, nil)
	if err != nil {
		t.Fatalf("unsigned, no key: %v", err)
	}
	if rep.Signed || rep.Sidecar.HMAC != "" {
		t.Errorf("report says signed: %+v", rep)
	}
	if _, err := Verify(wav, testKey); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned, key given: %v, want ErrUnsigned", err)
	}
	// Without a signature the hash still catches an audio edit.
	b, _ := os.ReadFile(wav)
	b[len(b)-1] ^= 0x80
	if err := os.WriteFile(wav, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(wav, nil); !errors.Is(err, ErrAudioChanged) {
		t.Errorf("unsigned, audio edited: %v, want ErrAudioChanged", err)
	}
}

func TestCanonicalCoversEverySignedField(t *testing.T) {
	base := Sidecar{Version: 1, CallID: "a", Start: time.Unix(1, 0), End: time.Unix(2, 0), DurationMS: 1000,
		SampleRate: 8000, BitsPerSample: 16, Codec: "PCMU", Channels: Layout{"caller", "agent"},
		Markers:       []Marker{{Reason: ReasonSecure, StartMS: 1, EndMS: 2, Start: time.Unix(1, 0), End: time.Unix(1, 1)}},
		FramesWritten: 1, FramesSilent: 2, FramesDropped: 3, PausedMS: 4, SHA256: "ab"}
	ref := string(base.Canonical())
	for name, edit := range map[string]func(*Sidecar){
		"call id":        func(s *Sidecar) { s.CallID = "b" },
		"start":          func(s *Sidecar) { s.Start = s.Start.Add(time.Nanosecond) },
		"end":            func(s *Sidecar) { s.End = s.End.Add(time.Second) },
		"duration":       func(s *Sidecar) { s.DurationMS++ },
		"codec":          func(s *Sidecar) { s.Codec = "PCMA" },
		"layout":         func(s *Sidecar) { s.Channels.Left, s.Channels.Right = s.Channels.Right, s.Channels.Left },
		"frames dropped": func(s *Sidecar) { s.FramesDropped = 0 },
		"paused":         func(s *Sidecar) { s.PausedMS = 0 },
		"hash":           func(s *Sidecar) { s.SHA256 = "cd" },
		"marker reason":  func(s *Sidecar) { s.Markers[0].Reason = ReasonAgent },
		"marker end":     func(s *Sidecar) { s.Markers[0].EndMS = 3 },
		"marker wall":    func(s *Sidecar) { s.Markers[0].End = s.Markers[0].End.Add(time.Millisecond) },
		// Netstrings keep field boundaries: moving a byte from one field
		// to the next changes the encoding.
		"boundary": func(s *Sidecar) { s.Channels.Left, s.Channels.Right = "calle", "ragent" },
	} {
		s := base
		s.Markers = append([]Marker(nil), base.Markers...)
		edit(&s)
		if string(s.Canonical()) == ref {
			t.Errorf("%s: edit does not change the canonical encoding", name)
		}
	}
}
