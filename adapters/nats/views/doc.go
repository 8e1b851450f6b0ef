// Package views materialises the projections: the single-writer projector folding
// STUDYD_EVENTS into the KV buckets, the rebuild it serves, and the query service
// answering from those buckets.
package views
