// Package checkpoint writes and reads the signed checkpoints of the event log
// (STUDYD_CHECKPOINTS), and verifies a replay of the log against them and against the
// live views.
package checkpoint
