// Package capture writes cloak's protocol and media captures: SIP and RTP
// datagrams to pcap files readable by tshark and Wireshark (PcapWriter), and
// SIP messages to a Homer collector as HEPv3 (HEPSender).
//
// cloak sees application payloads — a SIP message, an RTP datagram — with
// their source and destination addresses, not raw frames. PcapWriter
// therefore synthesises the IP and transport headers around each payload:
// IPv4 or IPv6, then UDP, or for SIP over TCP a minimal TCP segment (PSH|ACK
// with per-flow sequence numbers), with correct lengths and checksums, in a
// LINKTYPE_RAW file.
//
// Both writers are safe for concurrent use and never block their caller:
// WritePacket copies the payload into one of a fixed number of preallocated
// slots and hands it to a writer goroutine; when every slot is in use the
// packet is dropped and counted (Stats().Dropped). In steady state the write
// path allocates nothing, so the RTP read loop may call it per packet.
//
// CallCapture is the per-call face the rest of cloak sees. It wraps one or
// more sinks and obeys the secure gate: between Suppress and Resume every
// packet of the call is dropped and counted, never queued, and the
// suppression is recorded as a Marker (and, in a pcap, as a marker datagram
// to MarkerPort). The caller — the call package — decides when to suppress;
// capture only obeys and records.
//
// The package imports none of cloak's other packages.
package capture
