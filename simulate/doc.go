// Package simulate generates a realistic, deterministic fleet of Firefox clients running
// Normandy recipes over days: the commands studyd would receive from them, in time
// order. It is the load generator of `studyctl simulate`, of the integration tests and
// of the benchmarks.
//
// It is pure: no I/O, no clock (times start at Config.Start), and all randomness comes
// from a math/rand/v2 generator seeded with Config.Seed, so one seed always yields the
// same commands. Each simulated client's state is advanced with fsm.Decide as its
// commands are generated, so the fleet only sends what a real client in that state
// could send (no study removal of a study it is not in, no stale runs), and a clean
// simulation is accepted by studyd in full. The decisions are also tallied (Tally) so
// that tests can compare studyd's projections with exact expected counts.
package simulate
