// Command cloak is the cloak media server and its tools: serve, version,
// dtmf scan, flows check.
package main
