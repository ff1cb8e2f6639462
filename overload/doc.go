// Package overload holds a node's health and decides, from it, whether the
// node takes new calls: admission control, in the spirit of rtpengine's
// max-load, max-cpu and max-sessions, but measured on what callers hear.
//
// A media server that collapses for everyone when one call too many
// arrives is worse than one that refuses the call. So the owners of the
// node's resources expose cheap signals, each a number sampled by one
// goroutine (the Monitor's sampler) every Config.Interval:
//
//   - lag: how late the RTP readers handle datagrams (kernel receive time
//     to read), the worst seen since the last sample;
//   - cpu: the process's CPU time over wall time, as a share of
//     GOMAXPROCS (getrusage(2)), less what ExemptCPU took out (sign-in's
//     password hashing, which a stranger can start);
//   - system_cpu: the busy share of the cores the process may run on
//     (the machine's, or its affinity's), whoever's (/proc/stat), so a
//     node sharing its cores yields when other work starves it;
//   - recorder_backlog: the age of the oldest audio the recorder's writer
//     found queued, the worst since the last sample;
//   - calls: calls in progress, against sip.max_calls.
//
// Nothing here runs per packet: the owners fold their measure into an
// atomic at most every few milliseconds, and the sampler reads it.
//
// The state machine has hysteresis, so a node at the edge does not flap:
// it becomes overloaded at the first sample where a signal reaches its
// Limit (or the Config.Trip-th in a row), and it leaves only once every signal has stayed below its Leave
// level (by default 0.8 × Limit) for Config.Hold. The state is published as
// one atomic value; Refusing, asked once per INVITE or OPTIONS, reads it
// and takes no lock. One log line marks the start of an episode (which
// signal, its value and limit) and one its end (duration, the peak
// signal), never one per refused call.
//
// It imports nothing of cloak's, and time comes from Config.Now, so tests
// drive the state machine with a fake clock and fed signals.
package overload
