// Package app applies commands: load the client's last commit, decide with the state
// machine, append one commit; on a conflict reload and decide again. It knows nothing
// of NATS: the Store it is given does the I/O.
package app
