// Command rtppcap writes RTP streams as pcap files that sipp replays with
// <exec play_pcap_audio="FILE"/>: Ethernet/IPv4/UDP frames carrying RTP
// (RFC 3550) with 20 ms G.711 packets (PCMU or PCMA), optionally
// interleaved with RFC 4733 telephone-events for a digit string.
//
// sipp rewrites the addresses and ports and paces the packets by their pcap
// timestamps, so what matters here is the RTP inside and the spacing of the
// capture times. The output is deterministic (fixed SSRC, capture clock and
// initial sequence number), so the committed files can be regenerated
// byte for byte:
//
//	go generate ./tools/rtppcap
//
// Examples:
//
//	rtppcap -o tone.pcap -codec pcmu -tone 1004 -level -10 -seconds 3
//	rtppcap -o silence.pcap -codec pcma -seconds 5
//	rtppcap -o digits.pcap -codec pcmu -digits 1234# -lead 1s -digit-len 100ms -gap 100ms
//	rtppcap -o fields.pcap -codec pcmu -digits 12#,,,34# -pause 1s
//	rtppcap -o inband.pcap -codec pcmu -digits 1234# -inband -level -6
//
// A ',' in -digits is a pause of -pause (audio, no digit), so one stream
// can key several fields of an IVR at their own times. -inband sends the
// digits as DTMF tone pairs (ITU-T Q.23) in the audio, for peers that did
// not negotiate telephone-event.
package main
