// Package query is the query service: the studyd.query.* endpoints (study, uptake,
// client), answered from the KV views the projector (adapters/nats/views) writes and,
// for a client, from the store's latest commit.
package query
