package domain

import "errors"

// Errors the decider returns for commands that are well formed but not acceptable in
// the client's state.
var (
	// ErrIllegalTransition: the command asks for a transition the state machine forbids.
	ErrIllegalTransition = errors.New("domain: illegal transition")
	// ErrStaleRun: a recipe run older than one already applied; it cannot undo newer state.
	ErrStaleRun = errors.New("domain: stale run")
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
	// RejectParked: applying the command failed the same way too many times in a row
	// (e.g. its client's last commit cannot be read); its payload is kept in the
	// parked-commands stream until an operator re-drives it, and its partition moves on.
	RejectParked RejectionCode = "parked"
)

// RejectionCodes lists every code.
var RejectionCodes = []RejectionCode{RejectMalformed, RejectUnknownType, RejectInvalid, RejectSubjectMismatch,
	RejectOversize, RejectIllegal, RejectStale, RejectUnsupported, RejectParked}

// ClassifyRejection returns the code for an error from validation or deciding, and
// RejectInvalid for anything else from this package's validators.
func ClassifyRejection(err error) RejectionCode {
	switch {
	case errors.Is(err, ErrUnknownCommandType):
		return RejectUnknownType
	case errors.Is(err, ErrIllegalTransition):
		return RejectIllegal
	case errors.Is(err, ErrStaleRun):
		return RejectStale
	}
	return RejectInvalid
}
