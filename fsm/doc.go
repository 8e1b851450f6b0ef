// Package fsm decides what a command does to a client: it holds the state machines (the
// enrollment table of studies and the rollout table, each run through looplab/fsm, the
// only importer of that library) and Decide, the pure function from a client's state
// and a command to the events they produce and the resulting state.
//
// Nothing here does I/O, reads a clock or logs: time comes from the command, and the
// event log, not a long-lived machine, holds the truth. A command is decided by the
// rules of the Firefox version it names (domain.Rules); one that names none follows the
// 2018 seed document and the Firefox code of that era. Each fork is noted on the
// function that makes it and in docs/commands.md.
package fsm
