package capture_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cloak-voip/cloak/capture"
)

// A call's capture is suppressed for its secure segment: the packets in
// between never reach the pcap, and the file carries marker datagrams.
func ExampleCallCapture() {
	dir, _ := os.MkdirTemp("", "capture-example")
	defer os.RemoveAll(dir)
	w, err := capture.NewPcapWriter(filepath.Join(dir, "call.pcap"), capture.PcapOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	caller := netip.MustParseAddrPort("192.0.2.10:40000")
	cloak := netip.MustParseAddrPort("192.0.2.1:30000")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rtp := make([]byte, 172)
	rtp[0] = 0x80

	c := capture.NewCallCapture("example@192.0.2.10", w)
	_ = c.WritePacket(start, caller, cloak, capture.ProtoUDP, rtp)
	c.Suppress("secure", start.Add(time.Second))
	_ = c.WritePacket(start.Add(1500*time.Millisecond), caller, cloak, capture.ProtoUDP, rtp) // dropped
	c.Resume(start.Add(30 * time.Second))
	_ = c.WritePacket(start.Add(31*time.Second), caller, cloak, capture.ProtoUDP, rtp)
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range c.Markers() {
		fmt.Printf("%s from %s to %s\n", m.Reason, m.Start.Format(time.TimeOnly), m.End.Format(time.TimeOnly))
	}
	fmt.Printf("%+v\n", c.Stats())
	fmt.Printf("%+v\n", w.Stats())
	// Output:
	// secure from 03:04:06 to 03:04:35
	// {Passed:2 Suppressed:1}
	// {Written:4 Dropped:0 Errors:0}
}
