// Package eventlog is studyd's event log on JetStream: the STUDYD_EVENTS stream, the
// eventstore.Store implementation that appends commits and rejections to it, the
// replay that reads it back for audits and tools, and the translation of JetStream
// errors (compare-and-set conflicts, unavailability) into the store's.
package eventlog
