// Package server assembles one cloak node from its configuration: the RTP
// port pool and readers, prompts and flows, agents and queues, the
// recordings directory and key (and recovery of what a crash left), the
// captures, the call manager, the SIP server and the HTTP API, in that
// order, and shuts them down the other way round after the calls have
// drained. cmd/cloak only parses flags and calls Run; tests and other
// binaries can run a node the same way.
package server
