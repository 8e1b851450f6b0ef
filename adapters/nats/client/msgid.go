package client

import "github.com/studyd/studyd/domain"

// CommandMsgID is the Nats-Msg-Id of a command on every publish path:
// <client>/<command_id>#<the first 16 hex digits of cmd.Digest()>. JetStream
// deduplicates per stream, so the client is part of the id (two clients may use the
// same command id). The digest is of the decoded command, so the same command resent
// on any path — studyd.submit as JSON, publish as msgpack — is stored once inside the
// dedup window and answered with its first outcome, while a corrected resend is a new
// message, decided by the intake.
func CommandMsgID(cmd domain.Command) string {
	return string(cmd.ClientID) + "/" + cmd.CommandID + "#" + cmd.Digest()[:16]
}
