package intake_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// TestSameCommandIDOnTwoClientsAppliesBoth: a command id is unique per client, not per
// stream; every publish path scopes the stream's dedup key to the client (issue 12,
// case 4: the second client's command used to be dropped as a duplicate).
func TestSameCommandIDOnTwoClientsAppliesBoth(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	cmd := func(client string) domain.Command {
		return domain.Command{Type: domain.CommandOptOut, CommandID: "optout-1", ClientID: domain.ClientID(client), At: at}
	}
	paths := []struct {
		name string
		send func(domain.Command) (client.Outcome, error)
	}{
		{"studyd.submit", func(c domain.Command) (client.Outcome, error) { return client.Submit(ctx, nc, c) }},
		{"publish and wait", func(c domain.Command) (client.Outcome, error) { return client.PublishAndWait(ctx, nc, c) }},
		{"publish commands", func(c domain.Command) (client.Outcome, error) {
			stats, err := client.PublishCommands(ctx, nc, once(c), client.PublishOptions{})
			if err != nil || stats.Duplicates != 0 {
				return client.Outcome{}, err
			}
			for ctx.Err() == nil { // fire and forget: look for the commit
				out, ok, err := intake.OutcomeOf(ctx, app.NewHandler(store, app.Config{CacheSize: -1}), c)
				if err != nil || ok {
					out.Status = client.OutcomeApplied
					return out, err
				}
				time.Sleep(20 * time.Millisecond)
			}
			return client.Outcome{}, ctx.Err()
		}},
	}
	for i, p := range paths {
		a, b := cmd("a-"+string(rune('0'+i))), cmd("b-"+string(rune('0'+i)))
		first, err := p.send(a)
		if err != nil || first.Status != client.OutcomeApplied {
			t.Fatalf("%s: client %s: got %+v, %v; want applied", p.name, a.ClientID, first, err)
		}
		second, err := p.send(b)
		if err != nil || second.Status != client.OutcomeApplied || second.Seq == first.Seq {
			t.Errorf("%s: client %s with the same command id: got %+v, %v; want applied as its own commit", p.name, b.ClientID, second, err)
		}
	}
}

// TestResentCommandIsAnsweredWithItsFirstOutcome: a resend inside the stream's dedup
// window is stored once; the sender gets the outcome the log records — the commit for
// an applied command, the rejection for a refused one (issue 12, case 5: it used to
// get a 504 after 10 s).
func TestResentCommandIsAnsweredWithItsFirstOutcome(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	applied := domain.Command{Type: domain.CommandOptOut, CommandID: "retry-1", ClientID: "c-retry", At: at}
	refused := domain.Command{Type: domain.CommandUnenroll, CommandID: "retry-2", ClientID: "c-retry", At: at.Add(time.Minute),
		Study: &domain.StudyRef{Object: domain.PreferenceStudy, Key: "never-enrolled"}}
	for _, tt := range []struct {
		cmd    domain.Command
		status string
	}{{applied, client.OutcomeApplied}, {refused, client.OutcomeRejected}} {
		first, err := client.Submit(ctx, nc, tt.cmd)
		if err != nil || first.Status != tt.status {
			t.Fatalf("Submit %s: got %+v, %v; want %s", tt.cmd.CommandID, first, err, tt.status)
		}
		want := first
		if tt.status == client.OutcomeApplied {
			want.Status = client.OutcomeDuplicate
		}
		for _, path := range []string{"studyd.submit", "publish and wait"} {
			var again client.Outcome
			if path == "studyd.submit" {
				again, err = client.Submit(ctx, nc, tt.cmd)
			} else {
				again, err = client.PublishAndWait(ctx, nc, tt.cmd)
			}
			if err != nil || again.Status != want.Status || again.Seq != want.Seq || again.Code != want.Code {
				t.Errorf("%s resend of %s: got %+v, %v; want %s at seq %d %s", path, tt.cmd.CommandID, again, err, want.Status, want.Seq, want.Code)
			}
		}
	}
}

// stalledLoads is a store whose loads wait until release is closed.
type stalledLoads struct {
	eventstore.Store
	release chan struct{}
}

func (s *stalledLoads) Load(ctx context.Context, c domain.ClientID) (eventstore.Record, error) {
	<-s.release
	return s.Store.Load(ctx, c)
}

// TestSubmitServesRequestsConcurrently: a submit waiting for its outcome does not hold
// up the next request (issue 12, case 6: one request at a time, each unanswerable one
// held for 10 s). The first command's client cannot be loaded until the end; a
// malformed command is answered by the endpoint itself and must come back first.
func TestSubmitServesRequestsConcurrently(t *testing.T) {
	t.Parallel()
	nc, _, store := setup(t)
	stalled := &stalledLoads{Store: store, release: make(chan struct{})}
	svc := intake.NewSubmitService(nc, app.NewHandler(stalled, app.Config{}), intake.SubmitConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		close(stalled.release)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("submit service: %v", err)
		}
	}()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("submit service: %v", err)
	}
	waiting := request(t, nc, client.SubmitSubject, []byte(optOut("c-slow", "slow-1")))
	quick := request(t, nc, client.SubmitSubject, []byte(`not json`))
	reply, err := quick.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("the second request got no answer: %v", err)
	}
	var out client.Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil || out.Code != domain.RejectMalformed {
		t.Fatalf("second answer %q (%v): want a malformed rejection", reply.Data, err)
	}
	if m, err := waiting.NextMsg(time.Millisecond); err == nil {
		t.Fatalf("the waiting request was answered (%q %s) before the one behind it: requests are served one at a time",
			m.Data, m.Header.Get(micro.ErrorHeader))
	}
}

// request publishes a request on nc without waiting, in publish order, and returns the
// subscription its reply arrives on.
func request(t *testing.T, nc *nats.Conn, subject string, body []byte) *nats.Subscription {
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

// once yields c, then nothing.
func once(c domain.Command) func() (domain.Command, bool) {
	sent := false
	return func() (domain.Command, bool) {
		if sent {
			return domain.Command{}, false
		}
		sent = true
		return c, true
	}
}

// TestResentReusedIDIsAnsweredWithItsRefusal: a command id applied with one body, sent
// again with another (refused id_reused), and that other body resent: the stream holds
// the resend once, and its answer is its own refusal — not the first body's commit
// (found by attacking the build: it was answered "duplicate" with the other commit).
func TestResentReusedIDIsAnsweredWithItsRefusal(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	first := domain.Command{Type: domain.CommandOptOut, CommandID: "same", ClientID: "c-reuse", At: at}
	other := first
	other.StudiesEnabled = true
	if out, err := client.Submit(ctx, nc, first); err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("first body: %+v, %v; want applied", out, err)
	}
	refused, err := client.Submit(ctx, nc, other)
	if err != nil || refused.Code != domain.RejectIDReused {
		t.Fatalf("other body: %+v, %v; want rejected id_reused", refused, err)
	}
	again, err := client.Submit(ctx, nc, other)
	if err != nil || again.Status != client.OutcomeRejected || again.Code != domain.RejectIDReused || again.Seq != refused.Seq {
		t.Errorf("other body resent: got %+v, %v; want its refusal, id_reused at seq %d", again, err, refused.Seq)
	}
}
