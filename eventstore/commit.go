package eventstore

import (
	"time"

	"github.com/studyd/studyd/domain"
)

// SchemaVersion is the envelope version this build writes. Older versions are upcast on
// decode; newer ones are rejected with ErrUnknownSchema.
const SchemaVersion = 2

// RecentCommands is how many of a client's latest command ids each commit carries, so
// that a command re-sent after the JetStream dedup window is still recognised.
const RecentCommands = 16

// Commit is everything one command decided for one client, stored as one message: the
// events, the client's resulting state, and what links it to the command and to the
// client's previous commit.
type Commit struct {
	Schema      int                `msgpack:"schema"`
	CommitID    string             `msgpack:"commit_id"`
	CommandID   string             `msgpack:"command_id"`
	CommandType domain.CommandType `msgpack:"command_type"`
	// CommandSeq is the command's sequence on STUDYD_CMDS (0 if submitted directly), for
	// tracing only: a stream position means something only within one instance of the
	// stream, and STUDYD_CMDS may be recreated, so duplicates are never told by it.
	CommandSeq    uint64 `msgpack:"command_seq"`
	CorrelationID string `msgpack:"correlation_id,omitempty"`
	// CommandDigest is domain.Command.Digest of the command applied: a command id
	// coming back with another digest is a reuse, refused, not a duplicate. Empty in
	// commits written before it existed.
	CommandDigest string             `msgpack:"command_digest,omitempty"`
	Client        domain.ClientID    `msgpack:"client"`
	At            time.Time          `msgpack:"at"` // when the command happened (the command's at)
	Events        []domain.Event     `msgpack:"events"`
	State         domain.ClientState `msgpack:"state"`
	Recent        []Applied          `msgpack:"recent"` // newest last, this command included
	FSMVersion    string             `msgpack:"fsm_version"`
	PrevHash      string             `msgpack:"prev_hash"` // Hash of the client's previous commit; "" for its first
}

// Applied identifies one command a client's state already reflects.
type Applied struct {
	CommandID  string `msgpack:"command_id" json:"command_id"`
	CommandSeq uint64 `msgpack:"command_seq" json:"command_seq"`
	Position   uint64 `msgpack:"position" json:"position"` // the commit it produced; 0 in the commit that produced it
}

// Record is a commit as read back from a Store.
type Record struct {
	Position uint64 // opaque: order only, no arithmetic; 0 means "no commit"
	Commit   Commit
	Hash     string // hex sha256 over the commit's canonical bytes
}

// Rejection is a command studyd refused, recorded so that an auditor can list them.
type Rejection struct {
	Schema    int                  `msgpack:"schema"`
	CommandID string               `msgpack:"command_id,omitempty"` // empty if the command could not be decoded
	Client    domain.ClientID      `msgpack:"client,omitempty"`
	Subject   string               `msgpack:"subject,omitempty"`
	Code      domain.RejectionCode `msgpack:"code"`
	Error     string               `msgpack:"error"`
	At        time.Time            `msgpack:"at"`                   // when studyd refused it
	Payload   []byte               `msgpack:"payload,omitempty"`    // the first bytes of what arrived
	StreamSeq uint64               `msgpack:"stream_seq,omitempty"` // its STUDYD_CMDS sequence; 0 if it did not come through the stream
}

// MaxRejectedPayload is how much of a rejected command's payload is kept as evidence.
const MaxRejectedPayload = 4096
