package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cloak-voip/cloak/recorder"
)

// TestRecordingInfoSecureThroughout: a call that was secure from its
// first to its last frame hands the recorder nothing (a secure segment
// hands over no frame at all), so its frame counters are zero; info must
// still say the whole recording is silence because it was paused, not
// that nothing happened.
func TestRecordingInfoSecureThroughout(t *testing.T) {
	c := &stepClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	r, err := recorder.New(recorder.Config{Dir: t.TempDir(), Name: "sec", CallID: "sec-call", Codec: "PCMU", Key: []byte("k"), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(recorder.ReasonSecure); err != nil {
		t.Fatal(err)
	}
	c.advance(3 * time.Second)
	res, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runRec("info", res.WAV)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"duration:  00:03.000",
		"frames:    0 written as audio, 0 handed over while paused, 0 dropped (20ms each)",
		"paused:    00:03.000 written as silence (secure 00:03.000)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
}
