// Package admin is cloak's HTTP API: live calls and their masked progress,
// agents, and the actions an agent's desktop needs (send the caller into a
// secure flow). Handlers work over the Backend interface so they can be
// tested without calls. Routing uses net/http's ServeMux method and
// wildcard patterns (Go 1.22), which covers this API without a router
// dependency.
package admin
