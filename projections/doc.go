// Package projections holds studyd's read models as pure folds over the log: uptake
// tallies per source, status and time bucket, enrollment views per study, and the
// client view. Folds do no I/O, read no clock (time is the commit's At) and never log;
// adapters/nats/views materialises them into JetStream KV buckets, and audits replay the log
// through the same folds.
//
// Every fold is keyed by commit position: a view remembers the position it reflects
// and ignores a commit at or below it, so a fold can resume from a saved view (or
// receive a redelivered commit) without counting anything twice. Event types a fold
// does not count are ignored, so a newer log still folds.
package projections
