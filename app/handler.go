package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/fsm"
)

// ErrTooManyConflicts: other writers kept moving the client; the command was not
// applied and may be retried.
var ErrTooManyConflicts = errors.New("app: too many conflicting writers")

// Config tunes a Handler. The zero value is usable.
type Config struct {
	CacheSize int // clients whose latest record is kept; 0 = 100,000; <0 = no cache
	// CacheBytes bounds the cache's memory: its compact records, their keys and its
	// interned strings; 0 = DefaultCacheBytes.
	CacheBytes   int
	MaxConflicts int // reload-and-retry rounds on ErrConflict; 0 = 8
	// AtRange is the accepted range of a command's at; the zero value is
	// domain.DefaultAtRange.
	AtRange domain.AtRange
	// Now is the deciding clock AtRange is measured from; nil = time.Now.
	Now func() time.Time
	// Index remembers the command ids that have left a client's RecentCommands; nil =
	// the store, if it implements AppliedIndex. Without one, a command id is recognised
	// only while it is among the client's RecentCommands or within the store's own
	// duplicate detection.
	Index AppliedIndex
	// Refusals remembers where each command id's latest refusal is recorded; nil = the
	// store, if it implements RefusalIndex. Without one, Rejected reads all of the
	// client's rejections.
	Refusals RefusalIndex
	// Logger receives what the handler survives (a refusal it could not index); nil =
	// slog.Default().
	Logger *slog.Logger
}

// AppliedIndex remembers, for ever, which command ids each client has applied. The
// Handler writes an id to it when the id leaves the RecentCommands a commit carries, and
// before the commit that drops it is appended, so every applied id is always either in
// the client's latest commit or in the index.
type AppliedIndex interface {
	// Applied returns the position of the commit that applied commandID to client, or
	// ok false if the index has no such id. Safe for concurrent use.
	Applied(ctx context.Context, client domain.ClientID, commandID string) (pos uint64, ok bool, err error)
	// Remember records that the commit at pos applied commandID to client. Idempotent;
	// an error means the id may not be recorded and the command must not be applied.
	Remember(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error
}

// RefusalIndex remembers, for each client and command id, where the latest refusal of
// the id by decision (domain.RejectionCode.ByDecision) is recorded, so that finding a resent command's earlier refusal is one lookup
// and one read, not a read of all its client's refusals (which a client refused
// thousands of times makes long). The Handler writes to it after Reject has recorded
// such a refusal that names a command id and a client.
type RefusalIndex interface {
	// Refused returns the position of the latest refusal of commandID to client the
	// index holds, or ok false if it holds none. An invalid client id is an error. Safe
	// for concurrent use.
	Refused(ctx context.Context, client domain.ClientID, commandID string) (pos uint64, ok bool, err error)
	// RememberRefusal records pos as the latest refusal of commandID to client, over
	// any earlier one. Idempotent; an error means the refusal may not be remembered.
	RememberRefusal(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error
}

// latestLoader is a store whose Load may trail the log — eventlog.Store's direct get,
// which a replica behind the stream's leader may answer — and which can also load from
// the leader. latestIndex is the same for an AppliedIndex.
type latestLoader interface {
	LoadLatest(ctx context.Context, client domain.ClientID) (eventstore.Record, error)
}
type latestIndex interface {
	AppliedLatest(ctx context.Context, client domain.ClientID, commandID string) (pos uint64, ok bool, err error)
}

// origin is where a client's record was read, which says whether a refusal decided on
// it is final. Only one decided on the log as its leader has it is: from this
// instance's cache, another instance may have moved the client since; from a replica,
// the client's last commits, and the index entries written with them, may be missing.
// Either would refuse a command the client's real state allows (an unenroll of a study
// a missing commit enrolled), or a redelivered command whose applying it does not see.
type origin uint8

const (
	fromCache   origin = iota
	fromReplica        // Store.Load of a store with a latestLoader
	fromLeader         // latestLoader.LoadLatest, or Store.Load of a store without one
)

// Handler applies commands to clients. It is safe for concurrent use, but commands of
// one client must arrive in order (the partitioned intake guarantees it); concurrent
// commands for one client are still safe, as the store's optimistic check serialises
// them.
type Handler struct {
	store        eventstore.Store
	latest       latestLoader // nil: store.Load reads the leader
	index        AppliedIndex
	latestIndex  latestIndex // nil: index.Applied reads the leader
	refusals     RefusalIndex
	log          *slog.Logger
	cache        *cache
	maxConflicts int
	fsmVersion   string
	atRange      domain.AtRange
	now          func() time.Time
}

// NewHandler returns a Handler appending to store.
func NewHandler(store eventstore.Store, cfg Config) *Handler {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.MaxConflicts == 0 {
		cfg.MaxConflicts = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Index == nil {
		cfg.Index, _ = store.(AppliedIndex)
	}
	if cfg.Refusals == nil {
		cfg.Refusals, _ = store.(RefusalIndex)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	latest, _ := store.(latestLoader)
	latestIdx, _ := cfg.Index.(latestIndex)
	return &Handler{store: store, latest: latest, index: cfg.Index, latestIndex: latestIdx, refusals: cfg.Refusals, log: cfg.Logger,
		cache: newCache(cfg.CacheSize, cfg.CacheBytes), maxConflicts: cfg.MaxConflicts,
		fsmVersion: fsm.Version(), atRange: cfg.AtRange, now: cfg.Now}
}

// Source says where a command came from, for idempotency and tracing.
type Source struct {
	Seq           uint64 // its STUDYD_CMDS sequence; 0 if it did not come through the stream
	CorrelationID string
	// Redelivered: the stream delivered the command before, so it may have been applied.
	// Its client is read from the log's leader: a replica's index may not show that yet,
	// and a command the client's state would accept again (an opt-out) would be applied
	// twice.
	Redelivered bool
}

// Result is the outcome of an applied command.
type Result struct {
	Record    eventstore.Record // the commit that applied the command
	Duplicate bool              // the command had been applied before; Record is that commit
}

// Handle applies cmd. A rejected command returns an error wrapping one of domain's
// rejection errors (domain.IsRejection; see domain.ClassifyRejection); any other error
// is transient and the command may be retried. Handle never applies a command id twice
// to one client, however late it comes back: the same id with the same content returns
// the original commit as a duplicate, with another content domain.ErrCommandIDReused.
func (h *Handler) Handle(ctx context.Context, cmd domain.Command, src Source) (Result, error) {
	return h.handle(ctx, cmd, src, src.Redelivered)
}

// handle is Handle, reading the client from the log's leader from the start if latest.
// Once a decision was stale or an append conflicted, it reads the leader anyway: a
// replica that answered may still trail.
func (h *Handler) handle(ctx context.Context, cmd domain.Command, src Source, latest bool) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	digest := cmd.Digest()
	for range h.maxConflicts {
		st, err := h.loadAndDecide(ctx, cmd, digest, src, latest)
		latest = true
		switch {
		case err != nil:
			return Result{}, err
		case st.stale:
			continue
		case st.done:
			return st.result, nil
		}
		rec, err := h.store.Append(ctx, st.commit, st.last.Position)
		res, retry, err := h.settle(cmd, digest, rec, err)
		if !retry {
			return res, err
		}
	}
	return Result{}, fmt.Errorf("%w: client %s, command %s", ErrTooManyConflicts, cmd.ClientID, cmd.CommandID)
}

// step is one decision on a command: a commit to append on the client's last record,
// or an answer without one (done), or nothing because the record, read from the cache
// or a replica, may be stale (decide again from the leader: the cache entry is dropped).
type step struct {
	last   eventstore.Record
	commit eventstore.Commit
	result Result
	done   bool
	stale  bool
}

// decide decides cmd against last, its client's latest record as read from where: a
// duplicate is answered, anything else is checked and decided by the FSM, and the ids
// the new commit no longer carries are written to the index. A refusal decided on a
// record not read from the log's leader is not answered but reported stale.
func (h *Handler) decide(ctx context.Context, cmd domain.Command, digest string, src Source, last eventstore.Record, from origin) (step, error) {
	if orig, ok, err := h.findApplied(ctx, last, from, cmd.CommandID); err != nil || ok {
		if err == nil {
			err = sameContent(cmd, digest, orig)
		}
		if err != nil {
			return step{}, err
		}
		return step{result: Result{Record: orig, Duplicate: true}, done: true}, nil
	}
	// The range is checked after the duplicate check: a late retry of an applied
	// command is answered as the duplicate it is.
	if err := h.atRange.Check(cmd.At, h.now()); err != nil {
		return step{}, err
	}
	d, err := fsm.Decide(ctx, last.Commit.State, cmd)
	if err == nil && len(d.State.Enrollments) > len(last.Commit.State.Enrollments) {
		err = d.State.CheckLimits()
	}
	if err != nil && from != fromLeader {
		// A stale state must never refuse a valid command, nor an index behind the log
		// a redelivered one: decide again from the leader before answering.
		h.cache.drop(cmd.ClientID)
		return step{stale: true}, nil
	}
	if err != nil {
		return step{}, err
	}
	c, evicted := h.commit(last, cmd, digest, src, d)
	if err := h.remember(ctx, cmd.ClientID, evicted); err != nil {
		h.cache.drop(cmd.ClientID)
		return step{}, err
	}
	return step{last: last, commit: c}, nil
}

// settle turns the store's answer to cmd's append into Handle's result; retry means
// another writer moved first, and the command is to be decided again.
func (h *Handler) settle(cmd domain.Command, digest string, rec eventstore.Record, err error) (res Result, retry bool, _ error) {
	var dupErr *eventstore.DuplicateError
	switch {
	case err == nil:
		h.cache.put(rec)
		return Result{Record: rec}, false, nil
	case errors.As(err, &dupErr):
		h.cache.drop(cmd.ClientID)
		if err := sameContent(cmd, digest, dupErr.Original); err != nil {
			return Result{}, false, err
		}
		return Result{Record: dupErr.Original, Duplicate: true}, false, nil
	case errors.Is(err, eventstore.ErrConflict):
		h.cache.drop(cmd.ClientID) // another writer moved first: reload and decide again
		return Result{}, true, nil
	case errors.Is(err, eventstore.ErrTooLarge):
		h.cache.drop(cmd.ClientID)
		return Result{}, false, fmt.Errorf("%w: command %s: %w (fewer recipes, or shorter reasons, per run)", domain.ErrTooLarge, cmd.CommandID, err)
	default:
		h.cache.drop(cmd.ClientID)
		return Result{}, false, fmt.Errorf("append %s: %w", cmd.CommandID, err)
	}
}

// sameContent returns domain.ErrCommandIDReused if the commit that applied cmd's id
// applied another content. A commit written before digests existed, or one whose
// record is not at hand (orig zero), cannot tell and counts as the same.
func sameContent(cmd domain.Command, digest string, orig eventstore.Record) error {
	if d := orig.Commit.CommandDigest; d != "" && d != digest {
		return fmt.Errorf("%w: command_id %q was applied to client %s at position %d with other content (digest %s, this one %s); send a new command with a new command_id",
			domain.ErrCommandIDReused, cmd.CommandID, cmd.ClientID, orig.Position, d, digest)
	}
	return nil
}

// Applied looks up, in the log as its leader has it (never the cache), the commit that
// applied commandID to client. ok is false if the client has not applied it (yet); a
// zero Record with ok true means applied, by a commit the index does not name.
func (h *Handler) Applied(ctx context.Context, client domain.ClientID, commandID string) (eventstore.Record, bool, error) {
	last, from, err := h.load(ctx, client, true)
	if err != nil {
		return eventstore.Record{}, false, err
	}
	return h.findApplied(ctx, last, from, commandID)
}

// Rejected looks up the latest recorded refusal of client's commandID by decision
// (domain.RejectionCode.ByDecision: what a resend is answered with); ok is false if
// there is none. With a RefusalIndex that is one index lookup and one read of the
// rejection it names, however often the client was refused; a refusal the index does
// not name (recorded before the index existed, or its index write failed) is not
// found, and the caller records the command's refusal anew. Without an index it is a
// scan of the client's rejections.
func (h *Handler) Rejected(ctx context.Context, client domain.ClientID, commandID string) (eventstore.Rejection, uint64, bool, error) {
	if h.refusals == nil {
		return h.scanRejected(ctx, client, commandID)
	}
	if client.Validate() != nil {
		return eventstore.Rejection{}, 0, false, nil // Reject indexes no such client
	}
	pos, ok, err := h.refusals.Refused(ctx, client, commandID)
	if err != nil {
		return eventstore.Rejection{}, 0, false, fmt.Errorf("look up refusal of %s/%s: %w", client, commandID, err)
	}
	if !ok {
		return eventstore.Rejection{}, 0, false, nil
	}
	r, err := h.store.Rejection(ctx, pos)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		// The index names a position the log does not hold a rejection at (a log
		// restored without the index, say): not this command's refusal.
		return eventstore.Rejection{}, 0, false, nil
	case err != nil:
		return eventstore.Rejection{}, 0, false, fmt.Errorf("get refusal of %s/%s at %d: %w", client, commandID, pos, err)
	case r.Client != client || r.CommandID != commandID || !r.Code.ByDecision():
		return eventstore.Rejection{}, 0, false, nil // never answer with another command's refusal
	}
	return r, pos, true, nil
}

// scanRejected is Rejected without an index: the last refusal by decision of
// commandID among all of the client's rejections.
func (h *Handler) scanRejected(ctx context.Context, client domain.ClientID, commandID string) (r eventstore.Rejection, pos uint64, ok bool, err error) {
	err = h.store.Rejections(ctx, eventstore.Query{Client: client}, func(seq uint64, rej eventstore.Rejection) error {
		if rej.CommandID == commandID && rej.Code.ByDecision() {
			r, pos, ok = rej, seq, true
		}
		return nil
	})
	if err != nil {
		return eventstore.Rejection{}, 0, false, fmt.Errorf("rejections of %s: %w", client, err)
	}
	return r, pos, ok, nil
}

// remember writes the ids leaving the client's RecentCommands to the index.
func (h *Handler) remember(ctx context.Context, client domain.ClientID, evicted []eventstore.Applied) error {
	if h.index == nil {
		return nil
	}
	for _, a := range evicted {
		if err := h.index.Remember(ctx, client, a.CommandID, a.Position); err != nil {
			return fmt.Errorf("remember %s/%s: %w", client, a.CommandID, err)
		}
	}
	return nil
}

// load returns the client's latest record: from the cache when warm, else from the
// log — from its leader if latest.
func (h *Handler) load(ctx context.Context, client domain.ClientID, latest bool) (eventstore.Record, origin, error) {
	if !latest {
		if r, ok := h.cache.get(client); ok {
			return r, fromCache, nil
		}
	}
	var (
		r    eventstore.Record
		from origin
		err  error
	)
	if latest && h.latest != nil {
		r, err = h.latest.LoadLatest(ctx, client)
		from = fromLeader
	} else {
		r, err = h.store.Load(ctx, client)
		from = h.loadOrigin()
	}
	if err != nil {
		return eventstore.Record{}, from, fmt.Errorf("load %s: %w", client, err)
	}
	return r, from, nil
}

// loadOrigin is where the store's Load (and LoadMany) reads: a replica, if the store
// can also read the leader.
func (h *Handler) loadOrigin() origin {
	if h.latest != nil {
		return fromReplica
	}
	return fromLeader
}

// findApplied reports whether the client has applied commandID: it is among the ids
// its latest commit carries, or, for a client with more commands than those, in the
// index. It returns the commit that applied it when that is known. Stream sequences are
// not consulted: they mean something only within one instance of STUDYD_CMDS.
func (h *Handler) findApplied(ctx context.Context, last eventstore.Record, from origin, commandID string) (eventstore.Record, bool, error) {
	if last.Position == 0 {
		return eventstore.Record{}, false, nil
	}
	var pos uint64
	found := false
	for _, a := range slices.Backward(last.Commit.Recent) {
		if a.CommandID == commandID {
			pos, found = a.Position, true
			if pos == 0 { // the last commit itself
				if from != fromCache {
					return last, true, nil
				}
				pos = last.Position // the cached copy has no events: read the original
			}
			break
		}
	}
	if !found && len(last.Commit.Recent) >= eventstore.RecentCommands && h.index != nil {
		// Older ids than the commit carries: only then is the index asked, so a client's
		// first RecentCommands commands cost no lookup.
		applied := h.index.Applied
		if from == fromLeader && h.latestIndex != nil {
			applied = h.latestIndex.AppliedLatest
		}
		p, ok, err := applied(ctx, last.Commit.Client, commandID)
		if err != nil {
			return eventstore.Record{}, false, fmt.Errorf("look up %s: %w", commandID, err)
		}
		pos, found = p, ok
	}
	if !found {
		return eventstore.Record{}, false, nil
	}
	if pos == 0 {
		return eventstore.Record{}, true, nil // applied; its commit is not indexed
	}
	r, err := h.store.Get(ctx, pos)
	if err != nil {
		return eventstore.Record{}, false, fmt.Errorf("get original of %s: %w", commandID, err)
	}
	return r, true, nil
}

// commit builds the client's next commit from the decision, and returns the ids it no
// longer carries (which the index must hold before it is appended).
func (h *Handler) commit(last eventstore.Record, cmd domain.Command, digest string, src Source, d fsm.Decision) (eventstore.Commit, []eventstore.Applied) {
	recent := slices.Clone(last.Commit.Recent)
	if n := len(recent); n > 0 {
		recent[n-1].Position = last.Position // the previous commit is now addressable
	}
	recent = append(recent, eventstore.Applied{CommandID: cmd.CommandID, CommandSeq: src.Seq})
	var evicted []eventstore.Applied
	if over := len(recent) - eventstore.RecentCommands; over > 0 {
		evicted = recent[:over:over]
		recent = recent[over:]
	}
	return eventstore.Commit{
		Schema:        eventstore.SchemaVersion,
		CommitID:      commitID(cmd),
		CommandID:     cmd.CommandID,
		CommandType:   cmd.Type,
		CommandSeq:    src.Seq,
		CorrelationID: src.CorrelationID,
		CommandDigest: digest,
		Client:        cmd.ClientID,
		At:            cmd.At.UTC(),
		Events:        d.Events,
		State:         d.State,
		Recent:        recent,
		FSMVersion:    h.fsmVersion,
		PrevHash:      last.Hash,
	}, evicted
}

// commitID is derived from the command so that a retried decision yields the same id.
func commitID(cmd domain.Command) string {
	sum := sha256.Sum256([]byte(string(cmd.ClientID) + "\x00" + cmd.CommandID))
	return hex.EncodeToString(sum[:16])
}

// CachedClients is the number of clients whose state is cached (the memory benchmark
// reads it).
func (h *Handler) CachedClients() int { return h.cache.len() }

// CachedBytes is what the cache counts against Config.CacheBytes.
func (h *Handler) CachedBytes() int { return h.cache.size() }
