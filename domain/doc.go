// Package domain holds studyd's vocabulary: every status, object, method, extra and
// reason of the Normandy data-collection document spelled exactly, the commands
// clients send, the events studyd records, and a client's enrollment state.
//
// It is pure: no I/O, no clock, no logging. Time always comes from a command or event.
package domain
