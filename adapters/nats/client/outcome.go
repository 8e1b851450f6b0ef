package client

import (
	"github.com/studyd/studyd/domain"
)

// Outcome statuses.
const (
	OutcomeApplied   = "applied"   // the command's commit was appended now
	OutcomeDuplicate = "duplicate" // the command had been applied before; Seq is that commit
	OutcomeRejected  = "rejected"  // refused; Code and Error say why, Seq is the rejection record
)

// Outcome is studyd's answer to a command, sent as JSON to its reply subject (header
// Studyd-Reply-To, or the reply of a studyd.submit request).
type Outcome struct {
	CommandID string               `json:"command_id"`
	ClientID  domain.ClientID      `json:"client_id,omitempty"`
	Status    string               `json:"status"`
	Seq       uint64               `json:"seq,omitempty"` // STUDYD_EVENTS sequence of the commit or rejection
	Events    []domain.Event       `json:"events,omitempty"`
	Code      domain.RejectionCode `json:"code,omitempty"`
	Error     string               `json:"error,omitempty"`
}

// Header names of the command intake.
const (
	// HeaderReplyTo asks studyd to publish the Outcome of a command to this subject.
	HeaderReplyTo = "Studyd-Reply-To"
	// HeaderContentType marks a JSON command ("application/json"); msgpack is the default.
	HeaderContentType = "Content-Type"
	// ContentTypeJSON is the Content-Type of a JSON command.
	ContentTypeJSON = "application/json"
	// ContentTypeMsgpack is the Content-Type of a msgpack command (also the default).
	ContentTypeMsgpack = "application/msgpack"
)

// Command intake subjects.
const (
	// CommandsStream is the work-queue stream commands are published to.
	CommandsStream = "STUDYD_CMDS"
	// SubmitSubject is the micro endpoint for request/reply submission.
	SubmitSubject = "studyd.submit"
)

// CommandSubject is where a client's commands are published: studyd.cmd.<client>.
func CommandSubject(client domain.ClientID) string { return "studyd.cmd." + string(client) }
