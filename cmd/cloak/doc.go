// Command cloak is the cloak media server and its tools: serve (flags,
// then server.Run), version, dtmf scan, flows check, recording
// verify|info, archive …, fraud …, and users … / tokens … (the HTTP API's
// users and tokens, in the archive database serve reads per request).
package main
