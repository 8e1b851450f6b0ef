package domain

import "errors"

// Errors the decider returns for commands that are well formed but not acceptable in
// the client's state.
var (
	// ErrIllegalTransition: the command asks for a transition the state machine forbids.
	ErrIllegalTransition = errors.New("domain: illegal transition")
	// ErrStaleRun: a recipe run older than one already applied; it cannot undo newer state.
	ErrStaleRun = errors.New("domain: stale run")
	// ErrTooLarge: applying the command would make the client's commit larger than the
	// log accepts, or the client's state hold more than MaxEnrollmentsPerClient
	// enrollments. Retrying cannot help.
	ErrTooLarge = errors.New("domain: too large")
	// ErrCommandIDReused: the client already applied a command with this id and a
	// different body. A new command needs a new id.
	ErrCommandIDReused = errors.New("domain: command id reused with a different body")
	// ErrParked: applying the command failed the same way too many times in a row; it
	// was set aside with its payload so that the commands behind it go on.
	ErrParked = errors.New("domain: parked after failing repeatedly")
)

// Errors of a command refused before it is decided: its bytes, size or route.
var (
	// ErrMalformed: the bytes are not a single valid command (any wire codec).
	ErrMalformed = errors.New("domain: malformed command")
	// ErrUnsupportedContent: the command came in an encoding studyd does not read.
	ErrUnsupportedContent = errors.New("domain: unsupported content type")
	// ErrOversize: the command is larger than MaxCommandPayload.
	ErrOversize = errors.New("domain: command too large")
	// ErrSubjectMismatch: the command arrived on another client's subject.
	ErrSubjectMismatch = errors.New("domain: subject mismatch")
	// ErrReplyTo: the command asked for its outcome on a subject that is not an inbox.
	ErrReplyTo = errors.New("domain: reply subject refused")
)

// RejectionCode classifies why a command was refused; it is recorded with the rejection
// and counted in metrics.
type RejectionCode string

// Rejection codes.
const (
	RejectMalformed       RejectionCode = "malformed"        // not decodable as msgpack/JSON
	RejectUnknownType     RejectionCode = "unknown_type"     // a type studyd does not know
	RejectInvalid         RejectionCode = "invalid"          // missing or invalid fields
	RejectSubjectMismatch RejectionCode = "subject_mismatch" // the subject's client is not the body's
	RejectOversize        RejectionCode = "oversize"         // larger than MaxCommandPayload
	RejectIllegal         RejectionCode = "illegal_transition"
	RejectStale           RejectionCode = "stale"
	RejectUnsupported     RejectionCode = "unsupported" // e.g. an unknown content type or schema
	RejectTooLarge        RejectionCode = "too_large"   // its commit would exceed what the log accepts
	RejectIDReused        RejectionCode = "id_reused"   // the command id was applied with another body
	RejectReplyTo         RejectionCode = "reply_to"    // header Studyd-Reply-To names a subject that is not an inbox
	// RejectParked: applying the command failed the same way too many times in a row
	// (e.g. its client's last commit cannot be read); its payload is kept in the
	// parked-commands stream until an operator re-drives it, and its partition moves on.
	RejectParked RejectionCode = "parked"
)

// ByDecision reports whether c refuses a well-formed command for its client's state
// (illegal_transition, stale, id_reused): sent again, the command is refused again the
// same way, so it is answered with its first refusal rather than recorded twice.
func (c RejectionCode) ByDecision() bool {
	return c == RejectIllegal || c == RejectStale || c == RejectIDReused
}

// RejectionCodes lists every code.
var RejectionCodes = []RejectionCode{RejectMalformed, RejectUnknownType, RejectInvalid, RejectSubjectMismatch,
	RejectOversize, RejectIllegal, RejectStale, RejectUnsupported, RejectTooLarge, RejectIDReused, RejectReplyTo, RejectParked}

// ClassifyRejection returns the code for an error refusing a command (before deciding:
// bytes, size, route; or from validation or deciding), and RejectInvalid for anything
// else from this package's validators.
func ClassifyRejection(err error) RejectionCode {
	switch {
	case errors.Is(err, ErrMalformed):
		return RejectMalformed
	case errors.Is(err, ErrUnsupportedContent):
		return RejectUnsupported
	case errors.Is(err, ErrOversize):
		return RejectOversize
	case errors.Is(err, ErrSubjectMismatch):
		return RejectSubjectMismatch
	case errors.Is(err, ErrReplyTo):
		return RejectReplyTo
	case errors.Is(err, ErrUnknownCommandType):
		return RejectUnknownType
	case errors.Is(err, ErrIllegalTransition):
		return RejectIllegal
	case errors.Is(err, ErrStaleRun):
		return RejectStale
	case errors.Is(err, ErrTooLarge):
		return RejectTooLarge
	case errors.Is(err, ErrCommandIDReused):
		return RejectIDReused
	case errors.Is(err, ErrParked):
		return RejectParked
	}
	return RejectInvalid
}

// IsRejection tells a refused command (a permanent answer, recorded and never retried)
// from a failure to apply it.
func IsRejection(err error) bool {
	for _, refused := range []error{ErrMalformed, ErrUnsupportedContent, ErrOversize, ErrSubjectMismatch,
		ErrInvalid, ErrUnknownCommandType, ErrIllegalTransition, ErrStaleRun, ErrTooLarge, ErrCommandIDReused, ErrReplyTo} {
		if errors.Is(err, refused) {
			return true
		}
	}
	return false
}
