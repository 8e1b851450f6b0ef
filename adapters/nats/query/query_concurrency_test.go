package query

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
)

// TestQueriesServeRequestsConcurrently: a query waiting for min_seq does not hold up
// another query (issue 12, case 6).
func TestQueriesServeRequestsConcurrently(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	if _, err := eventlog.EnsureEventsStream(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	runQueries(t, nc, js, store, QueryConfig{MinSeqWait: time.Minute})
	waiting := requestAsync(t, nc, "studyd.query.study", []byte(`{"object":"preference_study","key":"x","min_seq":1000}`))
	quick := requestAsync(t, nc, "studyd.query.study", []byte(`{"object":"preference_study","key":"x"}`))
	if _, err := quick.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("the second query got no answer: %v", err)
	}
	if m, err := waiting.NextMsg(time.Millisecond); err == nil {
		t.Fatalf("the waiting query was answered (%q) before the one behind it", m.Data)
	}
}

// requestAsync publishes a request on nc without waiting, in publish order, and returns the
// subscription its reply arrives on.
func requestAsync(t *testing.T, nc *nats.Conn, subject string, body []byte) *nats.Subscription {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	msg := nats.NewMsg(subject)
	msg.Reply, msg.Data = inbox, body
	msg.Header.Set(client.HeaderContentType, client.ContentTypeJSON)
	if err := nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}
