package client

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/studyd/studyd/domain"
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
