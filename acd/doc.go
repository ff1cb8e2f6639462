// Package acd is cloak's automatic call distribution: the agents, their
// states through the working day (logged out, available, ringing, busy,
// reserved), the queues they serve, and the rule that hands a waiting
// caller to an agent — the longest-idle available agent of the queue,
// never a reserved one; of agents idle equally long, the one configured
// first. The call package asks it (Offer, Set) and the HTTP API reads it
// (Agents); it holds no call state of its own.
//
// The package imports none of cloak's packages.
package acd
