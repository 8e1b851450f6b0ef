// Package views materialises the projections: the single-writer projector folding
// STUDYD_EVENTS into the KV buckets, and the rebuild it serves. The query service
// answering from those buckets is adapters/nats/query.
package views
