// Package archive keeps what finished interactions leave behind: general
// information, participant data (masked after the call, with a keyed
// search token), secure-segment markers, flow traces, the recordings
// index and a signed audit log, in SQLite (embedded default, WAL) or
// PostgreSQL (shared by several nodes), over database/sql with the same
// schema and the same tests on both. Migrations are embedded and applied
// at Open with pressly/goose.
//
// Calls never wait on the database: a Writer takes call.Summary values
// into a bounded queue drained by one goroutine in batched transactions.
//
// docs/ARCHIVE.md says what is stored, every policy, and what is not
// built yet.
package archive
