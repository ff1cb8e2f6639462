// Package ivr loads, validates and runs IVR flows.
//
// A flow is a YAML file: a name, a kind (normal, or the secure kinds
// ivr-only and agent-referred), optional outputs, and a list of named steps,
// each holding exactly one action (answer, play, menu, collect, say_digits,
// set, set_data, branch, data_action, secure, transfer, disconnect,
// return_to_agent). Each action is one type implementing Action, in its own
// file (action_<key>.go); Parse decodes a step by its action key into that
// type. docs/FLOWS.md is the language reference.
//
// LoadDir parses and validates a directory of flows into a FlowSet; Validate
// reports every problem at once (unreachable steps, dangling nexts, paths that
// never end, missing timeout/failure branches, secure-kind rules, secrets
// reaching a sink that may not see them). A Runner interprets one flow per
// call against the Call interface declared here, so the package never
// imports the SIP, media or call packages and is tested with a fake call.
//
// Sensitive data: every variable collected in a secure flow (or with
// secret: true) is held as a secret whose String, GoString, Format and
// MarshalJSON print a mask. Its digits leave the package only through
// say_digits (last four only, read back to the caller) and a data_action
// marked payment_gateway (the JSON request body). Traces, errors and
// results never carry them; secret variables are wiped when their flow ends.
package ivr
