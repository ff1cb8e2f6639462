package dtmf_test

import (
	"fmt"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// A key press sent as RFC 4733 packets comes out as one Start and one End,
// however many end packets repeat it.
func ExampleDecoder() {
	enc, _ := dtmf.NewEncoder(dtmf.EncoderConfig{Duration: 120 * time.Millisecond})
	dec, _ := dtmf.NewDecoder(dtmf.DecoderConfig{})
	packets, _ := enc.Append(nil, '#', 16000)
	t0 := time.Unix(0, 0)
	for _, p := range packets {
		evs, _ := dec.Feed(0x1234, p.Timestamp, p.Payload[:], t0.Add(p.SendAt))
		for _, ev := range evs {
			fmt.Println(ev.Kind, string(ev.Digit), ev.Duration)
		}
	}
	// Output:
	// start # 50ms
	// end # 120ms
}

// A secret collector hands out the entry only as a Secret, which prints
// a mask.
func ExampleCollector() {
	c, _ := dtmf.NewCollector(dtmf.CollectorConfig{MinDigits: 12, MaxDigits: 19, Luhn: true, Secret: true})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c.Start(now)
	var res dtmf.Result
	for _, d := range []byte("4111111111111111#") {
		now = now.Add(300 * time.Millisecond)
		res, _ = c.Add(d, now)
	}
	fmt.Println(res.Reason, res.Secret, res.Secret.Len())
	fmt.Printf("%v %q\n", res.Secret, res.Secret)
	// Output:
	// terminator ************1111 16
	// ************1111 "************1111"
}
