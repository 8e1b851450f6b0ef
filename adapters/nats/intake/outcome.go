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
// failing that, its latest recorded rejection. ok is false when the log holds neither
// (the command is still queued, or was never sent).
func OutcomeOf(ctx context.Context, handler *app.Handler, clientID domain.ClientID, commandID string) (client.Outcome, bool, error) {
	op := fmt.Sprintf("outcome of %s/%s", clientID, commandID)
	r, ok, err := handler.Applied(ctx, clientID, commandID)
	if err != nil {
		return client.Outcome{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if ok {
		return client.Outcome{CommandID: commandID, ClientID: clientID, Status: client.OutcomeDuplicate,
			Seq: r.Position, Events: r.Commit.Events}, true, nil
	}
	rej, pos, ok, err := handler.Rejected(ctx, clientID, commandID)
	if err != nil || !ok {
		return client.Outcome{}, false, err
	}
	return rejected(rej, pos), true, nil
}
