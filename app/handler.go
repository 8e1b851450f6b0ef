package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/fsm"
)

// ErrTooManyConflicts: other writers kept moving the client; the command was not
// applied and may be retried.
var ErrTooManyConflicts = errors.New("app: too many conflicting writers")

// Config tunes a Handler. The zero value is usable.
type Config struct {
	CacheSize    int // clients whose latest record is kept; 0 = 100,000; <0 = no cache
	MaxConflicts int // reload-and-retry rounds on ErrConflict; 0 = 8
}

// Handler applies commands to clients. It is safe for concurrent use, but commands of
// one client must arrive in order (the partitioned intake guarantees it); concurrent
// commands for one client are still safe, as the store's optimistic check serialises
// them.
type Handler struct {
	store        eventstore.Store
	cache        *cache
	maxConflicts int
	fsmVersion   string
}

// NewHandler returns a Handler appending to store.
func NewHandler(store eventstore.Store, cfg Config) *Handler {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.MaxConflicts == 0 {
		cfg.MaxConflicts = 8
	}
	return &Handler{store: store, cache: newCache(cfg.CacheSize), maxConflicts: cfg.MaxConflicts, fsmVersion: fsm.Version()}
}

// Source says where a command came from, for idempotency and tracing.
type Source struct {
	Seq           uint64 // its STUDYD_CMDS sequence; 0 if it did not come through the stream
	CorrelationID string
}

// Result is the outcome of an applied command.
type Result struct {
	Record    eventstore.Record // the commit that applied the command
	Duplicate bool              // the command had been applied before; Record is that commit
}

// Handle applies cmd. A rejected command returns an error wrapping domain.ErrInvalid,
// domain.ErrUnknownCommandType, domain.ErrIllegalTransition or domain.ErrStaleRun (see
// domain.ClassifyRejection); any other error is transient and the command may be
// retried. Handle never applies a command twice: a command id or stream sequence the
// client's state already reflects returns the original commit as a duplicate.
func (h *Handler) Handle(ctx context.Context, cmd domain.Command, src Source) (Result, error) {
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	for range h.maxConflicts {
		last, cached, err := h.load(ctx, cmd.ClientID)
		if err != nil {
			return Result{}, err
		}
		if dup, ok, err := h.findApplied(ctx, last, cached, cmd.CommandID, src.Seq); err != nil || ok {
			return Result{Record: dup, Duplicate: ok}, err
		}
		d, err := fsm.Decide(ctx, last.Commit.State, cmd)
		if err != nil && cached {
			// The cache may be behind: another instance may have applied commands to
			// this client since. A stale state must never reject a valid command, so
			// decide again from the log before answering.
			h.cache.drop(cmd.ClientID)
			continue
		}
		if err != nil {
			return Result{}, err
		}
		rec, err := h.store.Append(ctx, h.commit(last, cmd, src, d), last.Position)
		var dupErr *eventstore.DuplicateError
		switch {
		case err == nil:
			h.cache.put(forCache(rec))
			return Result{Record: rec}, nil
		case errors.As(err, &dupErr):
			h.cache.drop(cmd.ClientID)
			return Result{Record: dupErr.Original, Duplicate: true}, nil
		case errors.Is(err, eventstore.ErrConflict):
			h.cache.drop(cmd.ClientID) // another writer moved first: reload and decide again
			continue
		default:
			h.cache.drop(cmd.ClientID)
			return Result{}, fmt.Errorf("append %s: %w", cmd.CommandID, err)
		}
	}
	return Result{}, fmt.Errorf("%w: client %s, command %s", ErrTooManyConflicts, cmd.ClientID, cmd.CommandID)
}

// load returns the client's latest record, from the cache when warm (cached true).
func (h *Handler) load(ctx context.Context, client domain.ClientID) (r eventstore.Record, cached bool, err error) {
	if r, ok := h.cache.get(client); ok {
		return r, true, nil
	}
	r, err = h.store.Load(ctx, client)
	if err != nil {
		return eventstore.Record{}, false, fmt.Errorf("load %s: %w", client, err)
	}
	return r, false, nil
}

// findApplied reports whether the client's state already reflects the command: its id
// is among the recent ones, or it came from the stream at or below the last sequence
// applied (a redelivery). It returns the commit that applied it when that is known.
func (h *Handler) findApplied(ctx context.Context, last eventstore.Record, cached bool, commandID string, seq uint64) (eventstore.Record, bool, error) {
	if last.Position == 0 {
		return eventstore.Record{}, false, nil
	}
	for _, a := range slices.Backward(last.Commit.Recent) {
		if a.CommandID != commandID {
			continue
		}
		pos := a.Position
		if pos == 0 { // the last commit itself
			if !cached {
				return last, true, nil
			}
			pos = last.Position // the cached copy has no events: read the original
		}
		r, err := h.store.Get(ctx, pos)
		if err != nil {
			return eventstore.Record{}, false, fmt.Errorf("get original of %s: %w", commandID, err)
		}
		return r, true, nil
	}
	if seq != 0 && seq <= maxSeq(last.Commit.Recent) {
		// Redelivered from the stream after more than RecentCommands newer commands: it
		// was applied, but its commit is no longer indexed here.
		return eventstore.Record{}, true, nil
	}
	return eventstore.Record{}, false, nil
}

func maxSeq(recent []eventstore.Applied) uint64 {
	var m uint64
	for _, a := range recent {
		m = max(m, a.CommandSeq)
	}
	return m
}

// commit builds the client's next commit from the decision.
func (h *Handler) commit(last eventstore.Record, cmd domain.Command, src Source, d fsm.Decision) eventstore.Commit {
	recent := slices.Clone(last.Commit.Recent)
	if n := len(recent); n > 0 {
		recent[n-1].Position = last.Position // the previous commit is now addressable
	}
	recent = append(recent, eventstore.Applied{CommandID: cmd.CommandID, CommandSeq: src.Seq})
	if over := len(recent) - eventstore.RecentCommands; over > 0 {
		recent = recent[over:]
	}
	return eventstore.Commit{
		Schema:        eventstore.SchemaVersion,
		CommitID:      commitID(cmd),
		CommandID:     cmd.CommandID,
		CommandType:   cmd.Type,
		CommandSeq:    src.Seq,
		CorrelationID: src.CorrelationID,
		Client:        cmd.ClientID,
		At:            cmd.At.UTC(),
		Events:        d.Events,
		State:         d.State,
		Recent:        recent,
		FSMVersion:    h.fsmVersion,
		PrevHash:      last.Hash,
	}
}

// forCache is what the cache keeps of a record: everything deciding the client's next
// command needs (state, position, hash, recent command ids), not the events, which
// are often the larger half and are read back from the log in the rare case of a
// duplicate.
func forCache(r eventstore.Record) eventstore.Record {
	r.Commit.Events = nil
	return r
}

// commitID is derived from the command so that a retried decision yields the same id.
func commitID(cmd domain.Command) string {
	sum := sha256.Sum256([]byte(string(cmd.ClientID) + "\x00" + cmd.CommandID))
	return hex.EncodeToString(sum[:16])
}

// CachedClients is the number of clients whose state is cached (the memory benchmark
// reads it).
func (h *Handler) CachedClients() int { return h.cache.len() }
