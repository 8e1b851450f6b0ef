package eventstore

import (
	"time"

	"github.com/studyd/studyd/domain"
)

// InRange reports whether position pos lies within q's From..To (To 0 = no upper bound).
func (q Query) InRange(pos uint64) bool {
	return pos >= q.From && (q.To == 0 || pos <= q.To)
}

// Matches reports whether a commit or rejection of client at time at is selected by q's
// Client, Since and Until (positions aside). Every Store selects with it, so that they
// agree on the edges: Since is inclusive, Until exclusive.
func (q Query) Matches(client domain.ClientID, at time.Time) bool {
	if q.Client != "" && client != q.Client {
		return false
	}
	if !q.Since.IsZero() && at.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !at.Before(q.Until) {
		return false
	}
	return true
}
