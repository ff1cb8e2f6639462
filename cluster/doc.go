// Package cluster is the state several cloak nodes share in PostgreSQL
// (docs/SCALE.md): a registry of nodes with heartbeats, agents'
// registrations and states with claims taken under row locks (so two
// nodes never offer the same agent), each node's live calls, and the
// clean-up of a node whose heartbeat stopped — its agents freed and its
// calls archived as ended "node-lost" by exactly one survivor.
// LISTEN/NOTIFY wakes the nodes when an agent may have become available.
//
// A Node implements acd.Shared; the tables come from the archive's
// migrations (archive/migrations/postgres/00010_cluster.sql). Nothing
// here is on the media path: claims happen when a caller is queued, the
// rest on a heartbeat.
package cluster
