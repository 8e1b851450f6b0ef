// Package client is the NATS side a client of studyd needs, and nothing of the
// server: connecting, the wire names (subjects, streams, buckets, headers), the
// command codec, publishing and submitting commands, the query, watch and rebuild
// requests, and reading the projector's KV views. cmd/studyctl links this package
// (and eventlog and checkpoint for audits) without nats-server, prometheus or app.
package client
