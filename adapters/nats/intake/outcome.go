package intake

import (
	"context"
	"errors"
	"fmt"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// OutcomeOf finds a command's outcome in the log: the client's commit that applied it
// (status duplicate: it was applied before, with that commit's sequence and events) or,
// failing that, its latest recorded rejection. ok is false when the log holds neither
// (the command is still queued, or was never sent).
func OutcomeOf(ctx context.Context, store eventstore.Store, clientID domain.ClientID, commandID string) (client.Outcome, bool, error) {
	op := fmt.Sprintf("outcome of %s/%s", clientID, commandID)
	latest, err := store.Load(ctx, clientID)
	if err != nil {
		return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	applied := func(r eventstore.Record) client.Outcome {
		return client.Outcome{CommandID: commandID, ClientID: clientID, Status: client.OutcomeDuplicate, Seq: r.Position, Events: r.Commit.Events}
	}
	if latest.Position != 0 && latest.Commit.CommandID == commandID {
		return applied(latest), true, nil
	}
	for _, a := range latest.Commit.Recent {
		if a.CommandID != commandID || a.Position == 0 {
			continue
		}
		r, err := store.Get(ctx, a.Position)
		if err != nil {
			return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if r.Commit.Client == clientID && r.Commit.CommandID == commandID {
			return applied(r), true, nil
		}
	}
	// Older than the recent commands: scan the client's commits, then its rejections.
	var found *eventstore.Record
	if latest.Position != 0 {
		err = store.Read(ctx, eventstore.Query{Client: clientID, To: latest.Position}, func(r eventstore.Record) error {
			if r.Commit.CommandID == commandID {
				found = &r
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if found != nil {
			return applied(*found), true, nil
		}
	}
	var out client.Outcome
	var rejected bool
	err = store.Rejections(ctx, eventstore.Query{Client: clientID}, func(seq uint64, r eventstore.Rejection) error {
		if r.CommandID == commandID {
			out = client.Outcome{CommandID: commandID, ClientID: clientID, Status: client.OutcomeRejected, Seq: seq, Code: r.Code, Error: r.Error}
			rejected = true
		}
		return nil
	})
	if err != nil {
		return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return out, rejected, nil
}

// errStopScan ends a scan early.
var errStopScan = errors.New("stop scan")
