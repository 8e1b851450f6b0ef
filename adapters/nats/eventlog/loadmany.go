package eventlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// MaxLoadMany is the most clients LoadMany reads at once: the server answers one
// multi-last request with at most 1024 messages.
const MaxLoadMany = 1024

// LoadMany returns the latest commit of each of clients, like Load, with one direct
// get of the last message on every client's subject (a multi-last request) instead of
// one request per client. A client whose last message is not an authentic commit is
// loaded alone (Load). Records are in the order of clients; a client with no commits
// has a zero Record.
func (s *Store) LoadMany(ctx context.Context, clients []domain.ClientID) ([]eventstore.Record, error) {
	if len(clients) > MaxLoadMany {
		return nil, fmt.Errorf("load %d clients: at most %d at once", len(clients), MaxLoadMany)
	}
	out := make([]eventstore.Record, len(clients))
	if len(clients) == 0 {
		return out, nil
	}
	at := make(map[string]int, len(clients)) // subject → index in clients
	subjects := make([]string, 0, len(clients))
	for i, c := range clients {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("load %s: %w", c, err)
		}
		subj := EventSubject(c)
		if _, dup := at[subj]; !dup {
			subjects = append(subjects, subj)
		}
		at[subj] = i
	}
	msgs, complete, err := s.multiLast(ctx, subjects)
	if err != nil {
		return nil, err
	}
	found := make([]bool, len(clients))
	for _, m := range msgs {
		i, ok := at[m.Header.Get("Nats-Subject")]
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, storeError("load many", fmt.Errorf("multi-last reply without a sequence: %w", err))
		}
		c := clients[i]
		if s.authentic(m.Header.Get("Nats-Subject"), m.Data, m.Header.Get(audit.HeaderMAC)) != nil {
			out[i], err = s.loadAuthentic(ctx, c, seq)
			if err != nil {
				return nil, err
			}
			found[i] = true
			continue
		}
		s.setHead(c, nil)
		r, err := record(seq, m.Data)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", c, err)
		}
		if r.Commit.Client != c {
			return nil, fmt.Errorf("load %s: %w: the commit at %d is client %q's", c, eventstore.ErrCorrupt, seq, r.Commit.Client)
		}
		out[i], found[i] = r, true
	}
	for i, c := range clients {
		if at[EventSubject(c)] == i && !found[i] && !complete {
			// The server stopped early: this client may have commits.
			if out[i], err = s.Load(ctx, c); err != nil {
				return nil, err
			}
		}
	}
	for i, c := range clients { // a client named twice gets the same record
		out[i] = out[at[EventSubject(c)]]
	}
	return out, nil
}

// loadTimeout bounds one multi-last request.
const loadTimeout = 10 * time.Second

// multiLast asks STUDYD_EVENTS for the last message on each subject and returns the
// messages up to the end-of-batch status; complete is false if the server stopped
// before the last subject (it bounds the bytes of one answer).
func (s *Store) multiLast(ctx context.Context, subjects []string) (msgs []*nats.Msg, complete bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	nc := s.js.Conn()
	body, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
		Batch     int      `json:"batch"`
	}{subjects, len(subjects)})
	if err != nil {
		return nil, false, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, false, storeError("load many", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, inbox, body); err != nil {
		return nil, false, storeError("load many", err)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, false, storeError("load many", err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			msgs = append(msgs, m)
		case "204": // end of batch
			return msgs, m.Header.Get("Nats-Num-Pending") == "0", nil
		case "404": // none of the subjects has a message
			return msgs, true, nil
		default:
			return nil, false, storeError("load many", fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description")))
		}
	}
}
