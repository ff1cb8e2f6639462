package media_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cloak-voip/cloak/audio"
	"github.com/cloak-voip/cloak/media"
)

// An echo leg: a port from the pool, an endpoint answering PCMU, and the
// Echo handler sending the caller's audio back on our own stream.
func Example_echo() {
	ip := netip.MustParseAddr("127.0.0.1")
	pool, err := media.NewPortPool(ip, 46000, 46998)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, port, err := pool.Open()
	if err != nil {
		fmt.Println(err)
		return
	}
	// The caller, at the address its SDP names: the leg accepts packets
	// from there only (media.SourceStrict, the zero value).
	caller, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	defer caller.Close()
	callerSDP := caller.LocalAddr().(*net.UDPAddr).AddrPort()

	leg := media.NewEndpoint(media.EndpointConfig{Conn: conn, Port: port, Pool: pool, Codec: audio.CodecPCMU(), Remote: callerSDP})
	leg.SetHandler(media.Echo())
	leg.Start()
	defer leg.Close()

	// One 20 ms PCMU packet (RFC 3550 header + 160 bytes).
	pkt := append([]byte{0x80, 0x80, 0, 1, 0, 0, 0, 160, 0xCA, 0x11, 0xE2, 0x00}, make([]byte, 160)...)
	_, _ = caller.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(ip, uint16(port)))

	_ = caller.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := caller.ReadFromUDPAddrPort(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("echoed bytes:", n)
	fmt.Println("our own SSRC:", string(buf[8:12]) != string(pkt[8:12]))
	fmt.Println("ports in use:", pool.InUse())
	// Output:
	// echoed bytes: 172
	// our own SSRC: true
	// ports in use: 1
}
