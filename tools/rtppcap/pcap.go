package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Addresses written into the frames. sipp replaces them with the call's
// media addresses when it plays the file.
var (
	srcMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	srcIP   = net.IPv4(127, 0, 0, 1).To4()
	dstIP   = net.IPv4(127, 0, 0, 1).To4()
	srcPort = layers.UDPPort(6000)
	dstPort = layers.UDPPort(7000)
	// captureStart is the capture time of the first packet; fixed so the
	// files are reproducible.
	captureStart = time.Unix(1700000000, 0).UTC()
)

const snapLen = 65535

// WritePcap writes the packets as a classic libpcap file (microsecond
// timestamps, LINKTYPE_ETHERNET), each RTP packet in Ethernet/IPv4/UDP.
//
// The container is written here rather than with gopacket's pcapgo, which
// pulls golang.org/x/net into the module graph; the format is the 24-byte
// global header and a 16-byte record header per packet
// (https://wiki.wireshark.org/Development/LibpcapFileFormat).
func WritePcap(w io.Writer, pkts []Packet) error {
	bw := bufio.NewWriter(w)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4) // magic, µs resolution
	binary.LittleEndian.PutUint16(hdr[4:], 2)          // version 2.4
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], snapLen)
	binary.LittleEndian.PutUint32(hdr[20:], uint32(layers.LinkTypeEthernet))
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	buf := gopacket.NewSerializeBuffer()
	for i, p := range pkts {
		payload, err := p.RTP.Marshal()
		if err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: srcIP, DstIP: dstIP}
		udp := &layers.UDP{SrcPort: srcPort, DstPort: dstPort}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return err
		}
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		frame := buf.Bytes()
		ts := captureStart.Add(p.At)
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		if _, err := bw.Write(rec[:]); err != nil {
			return err
		}
		if _, err := bw.Write(frame); err != nil {
			return err
		}
	}
	return bw.Flush()
}
