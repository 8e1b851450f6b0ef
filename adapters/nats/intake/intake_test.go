package intake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

const testPartitions = 4

// startService runs streams, intake and submit endpoint against a fresh embedded server.
func startService(t *testing.T, nc *nats.Conn, js jetstream.JetStream, store eventstore.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	handler := app.NewHandler(store, app.Config{})
	in := intake.New(nc, js, handler, intake.Config{Partitions: testPartitions, AckWait: time.Second})
	sub := intake.NewSubmitService(nc, handler, intake.SubmitConfig{Committers: 4})
	done := make(chan error, 2)
	go func() { done <- in.Run(ctx) }()
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	select {
	case <-sub.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("submit endpoint not ready after 10s")
	}
}

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream, eventstore.Store) {
	t.Helper()
	_, nc, js := setupPartitions(t, testPartitions)
	return nc, js, eventlog.NewStore(js)
}

// setupPartitions starts a fresh embedded server with studyd's streams, partitions
// command partitions.
func setupPartitions(t *testing.T, partitions int) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, nc, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, partitions, 1); err != nil {
		t.Fatal(err)
	}
	return s, nc, js
}

func optOut(client, id string) string {
	return fmt.Sprintf(`{"type":"opt_out","command_id":%q,"client_id":%q,"at":"2026-11-27T10:00:00Z"}`, id, client)
}

// publish sends raw command bytes the way a user would with `nats pub` and waits for
// the outcome on a reply inbox.
func publish(t *testing.T, nc *nats.Conn, js jetstream.JetStream, subject, contentType, body string) client.Outcome {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	msg.Header.Set(client.HeaderReplyTo, inbox)
	if contentType != "" {
		msg.Header.Set(client.HeaderContentType, contentType)
	}
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	reply, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no outcome for %s: %v", subject, err)
	}
	var out client.Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIntakeAppliesJSONCommandOnce(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	first := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeJSON, optOut("client-1", "cmd-1"))
	if first.Status != client.OutcomeApplied || first.Seq == 0 || len(first.Events) != 1 {
		t.Fatalf("first outcome = %+v, want applied with one event", first)
	}
	again := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeJSON, optOut("client-1", "cmd-1"))
	if again.Status != client.OutcomeDuplicate || again.Seq != first.Seq {
		t.Errorf("second outcome = %+v, want duplicate of seq %d", again, first.Seq)
	}
	rec, err := store.Load(context.Background(), "client-1")
	if err != nil || rec.Position != first.Seq || !rec.Commit.State.StudiesDisabled {
		t.Errorf("Load = %+v, %v; want the commit at %d with studies disabled", rec, err, first.Seq)
	}
}

func TestIntakeRejectsBadInputAndKeepsGoing(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	tests := []struct {
		name        string
		subject     string
		contentType string
		body        string
		code        domain.RejectionCode
		mentions    string
	}{
		{name: "malformed json", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON, body: `{"type":`, code: domain.RejectMalformed, mentions: "json"},
		{name: "malformed msgpack", subject: "studyd.cmd.c1", body: "\xc1garbage", code: domain.RejectMalformed, mentions: "msgpack"},
		{name: "unknown field", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON, body: `{"type":"opt_out","colour":"red"}`, code: domain.RejectMalformed, mentions: "colour"},
		{name: "unknown type", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON,
			body: `{"type":"launch","command_id":"u1","client_id":"c1","at":"2026-11-27T10:00:00Z"}`, code: domain.RejectUnknownType, mentions: "recipe_run"},
		{name: "missing fields", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON,
			body: `{"type":"recipe_run","client_id":"c1"}`, code: domain.RejectInvalid, mentions: "command_id"},
		{name: "subject mismatch", subject: "studyd.cmd.c2", contentType: client.ContentTypeJSON, body: optOut("c1", "m1"), code: domain.RejectSubjectMismatch, mentions: "studyd.cmd.c1"},
		{name: "oversize", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON,
			body: `{"type":"opt_out","command_id":"` + strings.Repeat("x", domain.MaxCommandPayload) + `"}`, code: domain.RejectOversize, mentions: "bytes"},
		{name: "illegal transition", subject: "studyd.cmd.c1", contentType: client.ContentTypeJSON,
			body: `{"type":"unenroll","command_id":"i1","client_id":"c1","at":"2026-11-27T10:00:00Z","study":{"object":"preference_study","key":"nope"}}`,
			code: domain.RejectIllegal, mentions: "nope"},
		{name: "unsupported content type", subject: "studyd.cmd.c1", contentType: "text/plain", body: "hello", code: domain.RejectUnsupported, mentions: "application/json"},
	}
	for _, tt := range tests {
		out := publish(t, nc, js, tt.subject, tt.contentType, tt.body)
		if out.Status != client.OutcomeRejected || out.Code != tt.code || !strings.Contains(out.Error, tt.mentions) {
			t.Errorf("%s: outcome = %s/%s %q, want rejected/%s mentioning %q", tt.name, out.Status, out.Code, out.Error, tt.code, tt.mentions)
		}
	}
	// The consumer is not wedged: a good command still goes through.
	if out := publish(t, nc, js, "studyd.cmd.c1", client.ContentTypeJSON, optOut("c1", "good")); out.Status != client.OutcomeApplied {
		t.Errorf("good command after bad ones: %+v, want applied", out)
	}
	var codes []domain.RejectionCode
	err := store.Rejections(context.Background(), eventstore.Query{}, func(_ uint64, r eventstore.Rejection) error {
		codes = append(codes, r.Code)
		return nil
	})
	if err != nil || len(codes) != len(tests) {
		t.Errorf("recorded rejections = %v (%v), want %d", codes, err, len(tests))
	}
}

func TestSubmitEndpointAnswersWithOutcome(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx := context.Background()
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "s1", ClientID: "c9", At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	out, err := client.Submit(ctx, nc, cmd)
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("Submit = %+v, %v; want applied", out, err)
	}
	bad, err := client.SubmitRaw(ctx, nc, client.ContentTypeJSON, []byte(`not json`))
	if err != nil || bad.Status != client.OutcomeRejected || bad.Code != domain.RejectMalformed {
		t.Errorf("SubmitRaw(garbage) = %+v, %v; want rejected/malformed", bad, err)
	}
}

// TestIntakeAndSubmitRefuseAlike sends the same bad commands through both ways in
// (STUDYD_CMDS and studyd.submit): the rejection policy is the app layer's, so each is
// refused with the same code and error, and recorded.
func TestIntakeAndSubmitRefuseAlike(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx := context.Background()
	tests := []struct {
		name, contentType, body string
		code                    domain.RejectionCode
	}{
		{"unsupported content type", "text/plain", "hello", domain.RejectUnsupported},
		{"malformed msgpack", "", "\xc1garbage", domain.RejectMalformed},
		{"malformed json", client.ContentTypeJSON, `{"type":`, domain.RejectMalformed},
		{"unknown field", client.ContentTypeJSON, `{"type":"opt_out","colour":"red"}`, domain.RejectMalformed},
		{"oversize", client.ContentTypeJSON, `{"type":"opt_out","command_id":"` + strings.Repeat("x", domain.MaxCommandPayload) + `"}`, domain.RejectOversize},
	}
	for _, tt := range tests {
		viaIntake := publish(t, nc, js, "studyd.cmd.c1", tt.contentType, tt.body)
		viaSubmit, err := client.SubmitRaw(ctx, nc, tt.contentType, []byte(tt.body))
		if err != nil {
			t.Errorf("%s: submit: %v", tt.name, err)
			continue
		}
		for way, out := range map[string]client.Outcome{"intake": viaIntake, "submit": viaSubmit} {
			if out.Status != client.OutcomeRejected || out.Code != tt.code || out.Seq == 0 {
				t.Errorf("%s via %s: outcome = %s/%s at %d (%q), want rejected/%s, recorded", tt.name, way, out.Status, out.Code, out.Seq, out.Error, tt.code)
			}
		}
		if viaIntake.Error != viaSubmit.Error {
			t.Errorf("%s: the two ways word it differently:\nintake: %s\nsubmit: %s", tt.name, viaIntake.Error, viaSubmit.Error)
		}
	}
	n := 0
	if err := store.Rejections(ctx, eventstore.Query{}, func(uint64, eventstore.Rejection) error { n++; return nil }); err != nil || n != 2*len(tests) {
		t.Errorf("recorded rejections = %d (%v), want %d", n, err, 2*len(tests))
	}
}

// failAfterAppend appends, then reports a failure once: the command is in the log but
// the intake believes it failed — the window of a crash between append and ack.
type failAfterAppend struct {
	eventstore.Store
	once sync.Once
}

func (f *failAfterAppend) Append(ctx context.Context, c eventstore.Commit, expected uint64) (eventstore.Record, error) {
	rec, err := f.Store.Append(ctx, c, expected)
	failed := false
	f.once.Do(func() { failed = true })
	if err == nil && failed {
		return eventstore.Record{}, fmt.Errorf("simulated crash after append: %w", eventstore.ErrUnavailable)
	}
	return rec, err
}

func TestIntakeCrashBetweenAppendAndAckLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, &failAfterAppend{Store: store})
	out := publish(t, nc, js, "studyd.cmd.c1", client.ContentTypeJSON, optOut("c1", "once"))
	if out.Status != client.OutcomeDuplicate {
		t.Errorf("outcome after redelivery = %+v, want duplicate (the first try had landed)", out)
	}
	n := 0
	_ = store.Read(context.Background(), eventstore.Query{Client: "c1"}, func(eventstore.Record) error { n++; return nil })
	if n != 1 {
		t.Errorf("log holds %d commits for c1, want exactly 1", n)
	}
}

func TestTwoIntakesShareWorkWithoutDoubleApplying(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	startService(t, nc, js, store) // a second instance on the same server
	ctx := context.Background()
	const clients, perClient = 20, 10
	for i := range perClient {
		for c := range clients {
			msg := nats.NewMsg(fmt.Sprintf("studyd.cmd.c%d", c))
			msg.Data = []byte(fmt.Sprintf(`{"type":"opt_out","command_id":"c%d-%d","client_id":"c%d","at":"2026-11-27T10:%02d:00Z","studies_enabled":%t}`,
				c, i, c, i, i%2 == 1))
			msg.Header.Set(client.HeaderContentType, client.ContentTypeJSON)
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		_ = store.Read(ctx, eventstore.Query{}, func(eventstore.Record) error { n++; return nil })
		if n == clients*perClient || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	perClientOrder := map[domain.ClientID][]string{}
	_ = store.Read(ctx, eventstore.Query{}, func(r eventstore.Record) error {
		perClientOrder[r.Commit.Client] = append(perClientOrder[r.Commit.Client], r.Commit.CommandID)
		return nil
	})
	for c := range clients {
		got := perClientOrder[domain.ClientID(fmt.Sprintf("c%d", c))]
		if len(got) != perClient {
			t.Errorf("client c%d: %d commits, want %d", c, len(got), perClient)
			continue
		}
		for i, id := range got {
			if want := fmt.Sprintf("c%d-%d", c, i); id != want {
				t.Errorf("client c%d commit %d = %s, want %s (in publish order)", c, i, id, want)
			}
		}
	}
}

// TestIntakeRepliesOnlyToInboxes: studyd publishes outcomes with its own rights, so a
// Studyd-Reply-To naming the log, a view, the JetStream API or the commands must not
// make it write there. The command is refused with a recorded rejection naming the
// header, nothing reaches the subject, and the client's next command is applied.
func TestIntakeRepliesOnlyToInboxes(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "studyd_uptake"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "runner.RUNNER_SUCCESS", []byte("468")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, client, replyTo string
	}{
		{name: "the log", client: "vic-1", replyTo: "studyd.evt.vic-1"},
		{name: "a rejection subject", client: "vic-2", replyTo: "studyd.rej.vic-2"},
		{name: "a view", client: "vic-3", replyTo: "$KV.studyd_uptake.runner.RUNNER_SUCCESS"},
		{name: "the commands", client: "vic-4", replyTo: "studyd.cmd.vic-4"},
		{name: "a wildcard inbox", client: "vic-5", replyTo: "_INBOX.>"},
		{name: "the JetStream API", client: "vic-6", replyTo: "$JS.API.STREAM.DELETE." + eventlog.EventsStream},
	}
	for _, tt := range tests {
		target, err := nc.SubscribeSync(strings.ReplaceAll(tt.replyTo, ">", "x.>"))
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(client.CommandSubject(domain.ClientID(tt.client)))
		msg.Data = []byte(optOut(tt.client, "bad-reply"))
		msg.Header.Set(client.HeaderContentType, client.ContentTypeJSON)
		msg.Header.Set(client.HeaderReplyTo, tt.replyTo)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("%s: publish: %v", tt.name, err)
		}
		// The client's next command is applied after the first is settled; its outcome
		// travels on the same connection as any reply to the first would have, so once
		// it is here, such a reply would be in target's queue.
		next := publish(t, nc, js, msg.Subject, client.ContentTypeJSON, optOut(tt.client, "next"))
		if next.Status != client.OutcomeApplied {
			t.Errorf("%s: next command: %+v, want applied", tt.name, next)
		}
		// studyd's own commits, rejections and the commands themselves pass there too;
		// an outcome is what must not.
		for m, err := target.NextMsg(0); err == nil; m, err = target.NextMsg(0) {
			var out client.Outcome
			if json.Unmarshal(m.Data, &out) == nil && out.Status != "" {
				t.Errorf("%s: an outcome was published to %s: %s", tt.name, m.Subject, m.Data)
			}
		}
		_ = target.Unsubscribe()
		var rej []eventstore.Rejection
		err = store.Rejections(ctx, eventstore.Query{Client: domain.ClientID(tt.client)}, func(_ uint64, r eventstore.Rejection) error {
			rej = append(rej, r)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: rejections: %v", tt.name, err)
		}
		if len(rej) != 1 || rej[0].Code != domain.RejectReplyTo || rej[0].CommandID != "bad-reply" ||
			!strings.Contains(rej[0].Error, client.HeaderReplyTo) || !strings.Contains(rej[0].Error, tt.replyTo) {
			t.Errorf("%s: rejections %+v, want one %s of bad-reply naming %s and %s", tt.name, rej, domain.RejectReplyTo, client.HeaderReplyTo, tt.replyTo)
		}
		rec, err := store.Load(ctx, domain.ClientID(tt.client))
		if err != nil || rec.Commit.CommandID != "next" {
			t.Errorf("%s: Load = %+v, %v; want the next command's commit", tt.name, rec.Commit.CommandID, err)
		}
	}
	if e, err := kv.Get(ctx, "runner.RUNNER_SUCCESS"); err != nil || string(e.Value()) != "468" {
		t.Errorf("view after the attempts: %v, %v; want 468", e, err)
	}
	s, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		t.Fatalf("events stream after the attempts: %v", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	// Per client: one rejection, one commit — nothing else.
	for subj, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("STUDYD_EVENTS holds %d messages on %s, want 1", n, subj)
		}
	}
}
