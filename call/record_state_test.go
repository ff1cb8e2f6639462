package call

import (
	"slices"
	"testing"

	"github.com/cloak-voip/cloak/recorder"
)

// TestRecordingStateInInfo: the call info's recording state, which a
// reloaded desk reads: "off" without a recorder, "on", "paused" with the
// reasons (the API's pause beside a payment's), "off" once closed.
func TestRecordingStateInInfo(t *testing.T) {
	c := &Interaction{id: "call-1"}
	if st, why := c.recordingState(); st != "off" || why != nil {
		t.Fatalf("no recorder: %q %v", st, why)
	}
	rec, err := recorder.New(recorder.Config{Dir: t.TempDir(), Name: "call-1", CallID: "call-1", Codec: "PCMU", Policy: recorder.PolicyRecord})
	if err != nil {
		t.Fatal(err)
	}
	c.rec.Store(rec)
	if st, _ := c.recordingState(); st != "on" {
		t.Errorf("recording: %q, want on", st)
	}
	if err := c.PauseRecording("api"); err != nil {
		t.Fatal(err)
	}
	_ = rec.Pause(recorder.ReasonPayment)
	if st, why := c.recordingState(); st != "paused" || !slices.Equal(why, []string{"api", "payment"}) {
		t.Errorf("paused: %q %v, want paused [api payment]", st, why)
	}
	if err := c.ResumeRecording("api"); err != nil {
		t.Fatal(err)
	}
	if st, why := c.recordingState(); st != "paused" || !slices.Equal(why, []string{"payment"}) {
		t.Errorf("api resumed: %q %v, want paused [payment]", st, why)
	}
	if _, err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.recordingState(); st != "off" {
		t.Errorf("closed: %q, want off", st)
	}
}
