package intake

import (
	"context"
	"fmt"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
)

// OutcomeOf finds a command's outcome in the log: the client's commit that applied it
// (status duplicate: it was applied before, with that commit's sequence and events) or,
// failing that, its latest refusal by decision (app.Handler.Rejected). A commit that applied another body under
// the same id is not this command's outcome: its outcome is that refusal (id_reused).
// ok is false when the log holds neither (the command is still queued, or was never
// sent).
func OutcomeOf(ctx context.Context, handler *app.Handler, cmd domain.Command) (client.Outcome, bool, error) {
	op := fmt.Sprintf("outcome of %s/%s", cmd.ClientID, cmd.CommandID)
	r, ok, err := handler.Applied(ctx, cmd.ClientID, cmd.CommandID)
	if err != nil {
		return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if ok && (r.Commit.CommandDigest == "" || r.Commit.CommandDigest == cmd.Digest()) {
		return client.Outcome{CommandID: cmd.CommandID, ClientID: cmd.ClientID, Status: client.OutcomeDuplicate,
			Seq: r.Position, Events: r.Commit.Events}, true, nil
	}
	rej, pos, ok, err := handler.Rejected(ctx, cmd.ClientID, cmd.CommandID)
	if err != nil || !ok {
		return client.Outcome{}, false, err
	}
	return rejected(rej, pos), true, nil
}
