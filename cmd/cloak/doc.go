// Command cloak is the cloak media server and its tools: serve (flags,
// then server.Run), version, dtmf scan, flows check, recording
// verify|info.
package main
