package natsadapter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// CommandMsgID is the Nats-Msg-Id of a command on every publish path:
// <client>/<command_id>#<16 hex digits of sha256(body)>. JetStream deduplicates per
// stream, so the client is part of the id (two clients may use the same command id);
// the body's digest makes a corrected resend inside the dedup window a new message,
// decided by the intake, while an identical resend is stored once.
func CommandMsgID(client domain.ClientID, commandID string, body []byte) string {
	sum := sha256.Sum256(body)
	return string(client) + "/" + commandID + "#" + hex.EncodeToString(sum[:8])
}

// errUndecided: the log holds no outcome of the command yet.
var errUndecided = errors.New("no outcome recorded yet")

// OutcomeOf finds a command's outcome in the log: the client's commit that applied it
// (status duplicate: it was applied before, with that commit's sequence and events) or,
// failing that, its latest recorded rejection. ok is false when the log holds neither
// (the command is still queued, or was never sent).
func OutcomeOf(ctx context.Context, store eventstore.Store, client domain.ClientID, commandID string) (Outcome, bool, error) {
	op := fmt.Sprintf("outcome of %s/%s", client, commandID)
	latest, err := store.Load(ctx, client)
	if err != nil {
		return Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	applied := func(r eventstore.Record) Outcome {
		return Outcome{CommandID: commandID, ClientID: client, Status: OutcomeDuplicate, Seq: r.Position, Events: r.Commit.Events}
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
			return Outcome{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if r.Commit.Client == client && r.Commit.CommandID == commandID {
			return applied(r), true, nil
		}
	}
	// Older than the recent commands: scan the client's commits, then its rejections.
	var found *eventstore.Record
	if latest.Position != 0 {
		err = store.Read(ctx, eventstore.Query{Client: client, To: latest.Position}, func(r eventstore.Record) error {
			if r.Commit.CommandID == commandID {
				found = &r
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return Outcome{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if found != nil {
			return applied(*found), true, nil
		}
	}
	var out Outcome
	var rejected bool
	err = store.Rejections(ctx, eventstore.Query{Client: client}, func(seq uint64, r eventstore.Rejection) error {
		if r.CommandID == commandID {
			out = Outcome{CommandID: commandID, ClientID: client, Status: OutcomeRejected, Seq: seq, Code: r.Code, Error: r.Error}
			rejected = true
		}
		return nil
	})
	if err != nil {
		return Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return out, rejected, nil
}

// errStopScan ends a scan early.
var errStopScan = errors.New("stop scan")
