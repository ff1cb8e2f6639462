// Package metrics is cloak's Prometheus exposition at /metrics on the
// admin listener: the series docs/METRICS.md lists.
//
// Most series are read at scrape time from the counters the node already
// keeps (the SIP server's, media.Totals, the admission monitor, the
// REGISTER limiter, the agent directory, the recordings' filesystem) by
// one prometheus.Collector; nothing is added to the RTP hot path. The
// call layer's events that have no counter of their own (calls by route
// and ending, secure segments, digit sources, queue waits, closed
// recordings) arrive through Calls, which implements call.Metrics, once
// per event.
//
// No label carries a phone number, a digit, a call id or a user name:
// routes, flows and queues are names from the configuration, every other
// label takes values from a fixed set in code (TestNoLabelLooksPrivate).
//
// Who may scrape: Handler lets through loopback clients only, or, with a
// token (metrics.token_file), the requests that carry it as a bearer
// token (docs/SECURITY.md, "Metrics").
package metrics
