// Package audit holds studyd's audit logic as pure code over the log: export formats
// (decoded envelopes, one CSV row per event, Firefox's Telemetry event shape), the
// verifier (legal transitions, per-client hash chains, signed checkpoints over a running
// digest, rebuilt views equal to the live ones), and time travel (a client as of a
// position, an enrollment's history, a study's sample-ratio health).
//
// It does no I/O of its own: it reads the log through the Log interface it declares
// (adapters/nats/eventlog implements it over JetStream), each message an Entry, and
// studyctl prints what this package computes. Like the folds in projections it reads
// no clock; times come from the log.
package audit
