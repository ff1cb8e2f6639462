// Command floor is the benchmark's floor: the least a user-space RTP relay
// can do per packet on this machine. Pair i listens on base+4i (the caller
// side) and base+4i+2 (the agent side); each socket has one goroutine that
// reads a datagram, latches its sender as that side's peer, rewrites the
// RTP header in place (SSRC and a sequence offset, as any relay that
// re-originates a stream must) and sends it from the other socket to the
// other side's peer. Nothing else: no parsing beyond the fixed header, no
// codec, no DTMF, no locks.
//
// With -io epoll the same work runs on cloak's I/O model instead (rtp.io:
// poll): a few workers waiting in epoll_wait on sockets outside Go's
// netpoller. The bench reports it beside the goroutine floor so that
// cloak's ratio to the floor can be read apart from the I/O model.
//
//	floor -base 10000 -pairs 1000 -duration 10m
//	floor -io epoll -workers 1 -base 10000 -pairs 1000
package main
