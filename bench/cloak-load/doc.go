// Command cloak-load is the load generator for cloak's benchmarks. It
// places N concurrent calls at a given rate — SIP into cloak, or the same
// media through rtpengine (ng protocol) or the bench's floor relay —
// streams G.711 at 50 packets/s each way, keys RFC 4733 digits on request,
// answers as the agent when cloak calls out, and measures at the receiving
// side: packets sent, received and lost, RFC 3550 inter-arrival jitter,
// one-way latency through the relay (send time stamped in the payload,
// kernel arrival time at the other end) and call setup time. With -pid it
// reads the relay's CPU time and memory from /proc over a steady window.
//
// It is built to leave the cores to the target: a few shared sockets with
// sendmmsg/recvmmsg batches, one pacing clock for all streams, one reader
// goroutine per socket; nothing runs per packet but the packet.
//
//	cloak-load -mode sip -target 127.0.0.1:5060 -user relay -agent 127.0.0.1:5090 \
//	    -calls 500 -rate 100 -warmup 5s -window 20s -pid $(pidof cloak) -json out.json
package main
