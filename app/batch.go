package app

import (
	"context"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// batchAppender is a store that appends several commits at once (eventlog.Store does,
// with all publishes in flight together). A store without it appends one by one.
type batchAppender interface {
	AppendBatch(ctx context.Context, batch []eventstore.Pending) []eventstore.Appended
}

// Request is one command of a batch and where it came from.
type Request struct {
	Cmd domain.Command
	Src Source
}

// Response is what Handle would have returned for one Request.
type Response struct {
	Result Result
	Err    error
}

// HandleBatch applies commands of distinct clients together, each exactly as Handle
// would: every command is decided on its own client's latest record, and the commits
// are then appended in one batch, so a batch costs the log about what one command
// costs. A command whose append fails in the batch (another writer moved its client
// first, say) is handled again alone, with Handle's reload and retry. Responses are in
// the order of reqs. Two requests of one client in a batch would be decided on the same
// record, so callers send a client's commands in successive batches (the later one
// would conflict, and be decided again alone).
func (h *Handler) HandleBatch(ctx context.Context, reqs []Request) []Response {
	out := make([]Response, len(reqs))
	digests := make([]string, len(reqs))
	var pending []eventstore.Pending
	var which []int // pending[k] is reqs[which[k]]
	lasts := h.loadAll(ctx, reqs)
	for i, r := range reqs {
		if err := r.Cmd.Validate(); err != nil {
			out[i].Err = err
			continue
		}
		digests[i] = r.Cmd.Digest()
		var st step
		err := lasts[i].err
		if err == nil {
			st, err = h.decide(ctx, r.Cmd, digests[i], r.Src, lasts[i].last, lasts[i].from)
		}
		if err == nil && st.stale { // the cache or a replica may be behind: decide again from the leader
			st, err = h.loadAndDecide(ctx, r.Cmd, digests[i], r.Src, true)
		}
		switch {
		case err != nil:
			out[i].Err = err
		case st.done:
			out[i].Result = st.result
		default:
			pending = append(pending, eventstore.Pending{Commit: st.commit, Expected: st.last.Position})
			which = append(which, i)
		}
	}
	for k, a := range h.appendAll(ctx, pending) {
		i := which[k]
		res, retry, err := h.settle(reqs[i].Cmd, digests[i], a.Record, a.Err)
		if retry {
			res, err = h.handle(ctx, reqs[i].Cmd, reqs[i].Src, true)
		}
		out[i] = Response{Result: res, Err: err}
	}
	return out
}

// appendAll appends pending with the store's batch append, or one by one.
func (h *Handler) appendAll(ctx context.Context, pending []eventstore.Pending) []eventstore.Appended {
	if len(pending) == 0 {
		return nil
	}
	if b, ok := h.store.(batchAppender); ok {
		return b.AppendBatch(ctx, pending)
	}
	out := make([]eventstore.Appended, len(pending))
	for i, p := range pending {
		out[i].Record, out[i].Err = h.store.Append(ctx, p.Commit, p.Expected)
	}
	return out
}

// loaded is a client's latest record as loadAll found it.
type loaded struct {
	last eventstore.Record
	from origin
	err  error
}

// batchLoader is a store that loads several clients at once (eventlog.Store does, with
// one multi-last request). A store without it loads one by one.
type batchLoader interface {
	LoadMany(ctx context.Context, clients []domain.ClientID) ([]eventstore.Record, error)
}

// loadAll loads the latest record of every request's client: cached ones from the
// cache, the others together, so that a batch of clients new to this instance costs
// one round trip to the log rather than one per client. A redelivered command's
// client is read from the log's leader (Source.Redelivered).
func (h *Handler) loadAll(ctx context.Context, reqs []Request) []loaded {
	out := make([]loaded, len(reqs))
	var missing []domain.ClientID
	var which []int // missing[k] is reqs[which[k]]'s client
	for i, r := range reqs {
		if r.Src.Redelivered {
			out[i].last, out[i].from, out[i].err = h.load(ctx, r.Cmd.ClientID, true)
			continue
		}
		if rec, ok := h.cache.get(r.Cmd.ClientID); ok {
			out[i] = loaded{last: rec, from: fromCache}
			continue
		}
		missing = append(missing, r.Cmd.ClientID)
		which = append(which, i)
	}
	if b, ok := h.store.(batchLoader); ok && len(missing) > 1 {
		if recs, err := b.LoadMany(ctx, missing); err == nil {
			from := h.loadOrigin()
			for k, rec := range recs {
				out[which[k]].last, out[which[k]].from = rec, from
			}
			return out
		}
		// Load them one by one: each gets its own error, if any.
	}
	for _, i := range which {
		out[i].last, out[i].from, out[i].err = h.load(ctx, reqs[i].Cmd.ClientID, false)
	}
	return out
}

// loadAndDecide loads cmd's client (from the log's leader if latest) and decides cmd.
func (h *Handler) loadAndDecide(ctx context.Context, cmd domain.Command, digest string, src Source, latest bool) (step, error) {
	last, from, err := h.load(ctx, cmd.ClientID, latest)
	if err != nil {
		return step{}, err
	}
	return h.decide(ctx, cmd, digest, src, last, from)
}
