// Package fsm decides what a command does to a client: it holds the enrollment state
// machine (a transition table run through looplab/fsm, the only importer of that
// library) and Decide, the pure function from a client's state and a command to the
// events they produce and the resulting state.
//
// Nothing here does I/O, reads a clock or logs: time comes from the command, and the
// event log, not a long-lived machine, holds the truth. Where the 2018 seed document
// (and the Firefox code of that era) differs from later Firefox, the seed wins; each
// such choice is noted on the function that makes it and in docs/commands.md.
package fsm
