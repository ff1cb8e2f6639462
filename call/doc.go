// Package call turns SIP sessions into interactions and is the one place
// that decides who receives what of a call.
//
// An Interaction is one call: its SIP session, the caller's RTP leg and,
// once bridged, an agent's leg; the Manager allocates each leg's endpoint,
// routes the call by its called user part (echo, tone, prompt, an IVR flow,
// a queue of agents, or a dial: relay) and keeps the lifetime guards (RTP
// inactivity). Agents and queues live in package acd.
//
// The secure gate (gate.go) is a table of the call's mode (normal,
// referred, secure) against each sink of call data (agent audio and DTMF,
// caller audio, recorder, SIP and RTP capture, participant data, the flow
// trace, logs). Every sink asks it through Route; the mode is written only
// by Interaction.setMode.
//
// Each leg has one media pipeline (pipeline.go): it decodes, detects and
// masks at most once per packet and hands the results to the recorder,
// the bridge and the IVR. docs/ARCHITECTURE.md has the whole path.
package call
