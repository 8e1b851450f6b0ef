package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/studyd/studyd/domain"
)

// Errors a Store returns (wrapped; test with errors.Is / errors.As).
var (
	// ErrConflict: another writer appended to the client after the expected position.
	// Reload, re-decide, retry.
	ErrConflict = errors.New("eventstore: version conflict")
	// ErrDuplicate: the command was already applied; *DuplicateError holds the outcome.
	ErrDuplicate = errors.New("eventstore: duplicate command")
	// ErrUnavailable: the log could not be reached or answered "try again"; retryable.
	ErrUnavailable = errors.New("eventstore: temporarily unavailable")
	// ErrUnknownSchema: a message was written by a newer or foreign schema.
	ErrUnknownSchema = errors.New("eventstore: unknown schema version")
	// ErrCorrupt: a message could not be decoded as a commit.
	ErrCorrupt = errors.New("eventstore: corrupt message")
	// ErrTooLarge: the encoded commit is larger than the log accepts. Never retryable:
	// the same commit will be as large next time.
	ErrTooLarge = errors.New("eventstore: commit too large")
)

// DefaultMaxCommitBytes is the largest encoded commit the MemoryStore accepts: NATS's
// default max_payload, the limit an external server most likely has.
const DefaultMaxCommitBytes = 1 << 20

// DuplicateError is returned by Append when the commit's command was already applied.
// Original is the commit that applied it.
type DuplicateError struct{ Original Record }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("eventstore: duplicate command %s (applied at position %d)", e.Original.Commit.CommandID, e.Original.Position)
}

// Is makes errors.Is(err, ErrDuplicate) hold.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// Store is studyd's append-only log. Implementations are safe for concurrent use.
type Store interface {
	// Append writes c as the client's next commit, provided the client's latest commit is
	// still at position expected (0 for a client with no commits). The caller sets
	// c.PrevHash to the Hash of the record it loaded; the Store writes c as given and
	// returns the new record. Errors: ErrConflict if another writer moved first;
	// *DuplicateError if c.CommandID was already applied to this client; ErrTooLarge if
	// the encoded commit exceeds what the log accepts; ErrUnavailable when a retry may
	// succeed.
	Append(ctx context.Context, c Commit, expected uint64) (Record, error)
	// Load returns the client's latest commit, or a zero Record (Position 0) and no
	// error for a client with no commits.
	Load(ctx context.Context, client domain.ClientID) (Record, error)
	// Get returns the commit at position pos. ErrNotFound if there is none.
	Get(ctx context.Context, pos uint64) (Record, error)
	// Read calls fn for every commit matching q, in log order, until fn returns an error
	// (which Read returns) or the selection ends.
	Read(ctx context.Context, q Query, fn func(Record) error) error
	// Reject records a refused command and returns its position.
	Reject(ctx context.Context, r Rejection) (uint64, error)
	// Rejections calls fn for every recorded rejection matching q, in log order.
	Rejections(ctx context.Context, q Query, fn func(uint64, Rejection) error) error
	// Rejection returns the rejection recorded at position pos (what Reject returned).
	// ErrNotFound if there is none: nothing there, or a commit.
	Rejection(ctx context.Context, pos uint64) (Rejection, error)
}

// ErrNotFound: no commit (Get) or rejection (Rejection) at that position.
var ErrNotFound = errors.New("eventstore: not found")

// Query selects part of the log. Zero fields select everything.
type Query struct {
	Client domain.ClientID // one client's commits only
	From   uint64          // first position, inclusive
	To     uint64          // last position, inclusive (0 = to the end as of the call)
	Since  time.Time       // commits at or after this time (commit.At)
	Until  time.Time       // commits before this time
}

// Pending is a commit waiting to be appended: what Store.Append takes, as a value, so
// that several can be handed to a store at once.
type Pending struct {
	Commit   Commit
	Expected uint64 // the client's position the commit was decided on
}

// Appended is the outcome of one Pending: the new record, or an error as Append's.
type Appended struct {
	Record Record
	Err    error
}
