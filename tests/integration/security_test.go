package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	studydaudit "github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// TestStudydProductionPermissions runs studyd (a host process) against a nats-server
// loaded with the documented deploy/nats-server.conf, and attacks it as the publisher
// role: it cannot forge a commit, cannot make studyd write anything through the reply
// header, cannot delete or purge a stream, cannot write a view — and studyd keeps
// serving through all of it. A forgery planted with admin rights is never used to
// decide a command, and verify --commit-key names it.
func TestStudydProductionPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, err := repoRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{"STUDYD_PASSWORD": "studyd-pw", "ADMIN_PASSWORD": "admin-pw",
		"PUBLISHER_PASSWORD": "publisher-pw", "READER_PASSWORD": "reader-pw"}
	n := startSingle(ctx, t, nodeSpec{name: "secure", config: string(conf), env: pw})

	keyFile := filepath.Join(t.TempDir(), "commit.key")
	keyBytes, err := studydaudit.GenerateCommitKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := studydaudit.ParseCommitKey(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	sd := startStudyd(ctx, t, "secure", n.URL(), "--user", "studyd", "--password", pw["STUDYD_PASSWORD"],
		"--commit-key", keyFile, "--partitions", "4")

	admin := connect(t, n.URL(), nats.UserInfo("admin", pw["ADMIN_PASSWORD"]))
	ajs := newJS(t, admin)
	pub := connect(t, n.URL(), nats.UserInfo("publisher", pw["PUBLISHER_PASSWORD"]),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	pjs := newJS(t, pub)

	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	submit := func(cmd domain.Command) client.Outcome {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := client.Submit(sctx, pub, cmd)
		if err != nil {
			t.Fatalf("submit %s: %v (is studyd still serving?)", cmd.CommandID, err)
		}
		return out
	}
	optOut := func(id string) domain.Command {
		at = at.Add(time.Minute)
		return domain.Command{Type: domain.CommandOptOut, CommandID: id, ClientID: "vic", At: at}
	}
	// The control: the publisher's commands are applied, and the views exist.
	run := domain.Command{Type: domain.CommandRecipeRun, CommandID: "run-1", ClientID: "vic", At: at, RunnerStatus: domain.RunnerSuccess}
	if out := submit(run); out.Status != client.OutcomeApplied {
		t.Fatalf("control command: %+v, want applied", out)
	}
	uptake := waitKV(ctx, t, ajs, client.UptakeBucket)
	tally := func() string {
		e, err := uptake.Get(ctx, "runner.RUNNER_SUCCESS")
		if err != nil {
			return "error: " + err.Error()
		}
		return string(e.Value())
	}
	waitFor(ctx, t, "the runner tally", func() bool { return !strings.HasPrefix(tally(), "error") })
	tallyBefore := tally()

	refused := func(name string, do func(context.Context) error) {
		t.Helper()
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := do(octx); err == nil {
			t.Errorf("publisher %s: got nil error, want a refusal", name)
		}
	}

	// 1. It cannot forge a commit or a rejection.
	refused("publishes a commit", func(ctx context.Context) error {
		_, err := pjs.Publish(ctx, eventlog.EventSubject("vic"), []byte("forged"))
		return err
	})
	refused("publishes a rejection", func(ctx context.Context) error {
		_, err := pjs.Publish(ctx, eventlog.RejectionSubject("vic"), []byte("forged"))
		return err
	})

	// 2. It cannot make studyd write for it through the reply header: each command is
	// refused (recorded, naming the header), nothing is published, the next is applied.
	targets := []string{
		eventlog.EventSubject("vic"),
		"$KV." + client.UptakeBucket + ".runner.RUNNER_SUCCESS",
		"$JS.API.STREAM.PURGE." + eventlog.EventsStream,
		"$JS.API.STREAM.DELETE." + eventlog.EventsStream,
	}
	for i, target := range targets {
		msg := nats.NewMsg(client.CommandSubject("vic"))
		cmd := optOut("reply-attack-" + string(rune('a'+i)))
		msg.Data, err = cmdJSON(cmd)
		if err != nil {
			t.Fatal(err)
		}
		msg.Header.Set(client.HeaderContentType, client.ContentTypeJSON)
		msg.Header.Set(client.HeaderReplyTo, target)
		if _, err := pjs.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish with reply %s: %v", target, err)
		}
		if out := submit(optOut("after-reply-attack-" + string(rune('a'+i)))); out.Status != client.OutcomeApplied {
			t.Errorf("command after a reply to %s: %+v, want applied", target, out)
		}
	}
	var rejections []eventstore.Rejection
	if err := eventlog.NewStore(pjs).Rejections(ctx, eventstore.Query{Client: "vic"}, func(_ uint64, r eventstore.Rejection) error {
		rejections = append(rejections, r)
		return nil
	}); err != nil {
		t.Fatalf("read rejections as the publisher: %v", err)
	}
	if len(rejections) != len(targets) {
		t.Errorf("got %d rejections, want %d (one per reply attack)", len(rejections), len(targets))
	}
	for _, r := range rejections {
		if r.Code != domain.RejectReplyTo || !strings.Contains(r.Error, client.HeaderReplyTo) {
			t.Errorf("rejection %+v: want code %s naming %s", r, domain.RejectReplyTo, client.HeaderReplyTo)
		}
	}

	// 3. It cannot delete or purge a stream, nor write or delete a view.
	refused("deletes STUDYD_EVENTS", func(ctx context.Context) error { return pjs.DeleteStream(ctx, eventlog.EventsStream) })
	refused("deletes STUDYD_CMDS", func(ctx context.Context) error { return pjs.DeleteStream(ctx, "STUDYD_CMDS") })
	refused("purges STUDYD_EVENTS", func(ctx context.Context) error {
		_, err := pub.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+eventlog.EventsStream, nil)
		return err
	})
	refused("writes a view", func(ctx context.Context) error {
		_, err := pjs.Publish(ctx, "$KV."+client.UptakeBucket+".runner.RUNNER_SUCCESS", []byte(`{"count":0}`))
		return err
	})
	refused("deletes a view", func(ctx context.Context) error { return pjs.DeleteKeyValue(ctx, client.UptakeBucket) })

	// studyd kept serving, and nothing it did not write is in the log or the views.
	if out := submit(optOut("still-serving")); out.Status != client.OutcomeApplied {
		t.Errorf("after the attacks: %+v, want applied", out)
	}
	if got := tally(); got != tallyBefore {
		t.Errorf("runner tally %s after the attacks, want %s", got, tallyBefore)
	}
	if err := pollHTTP(ctx, "http://"+sd.HTTP+"/readyz", 10*time.Second); err != nil {
		t.Errorf("studyd /readyz after the attacks: %v", err)
	}
	report := func(k *studydaudit.CommitKey) studydaudit.Report {
		t.Helper()
		r, err := checkpoint.VerifyLog(ctx, ajs, checkpoint.VerifyConfig{CommitKey: k})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return r
	}
	if r := report(key); r.FaultCount != 0 || !strings.Contains(r.Verdict(), "authorship OK") {
		t.Fatalf("verify after the publisher's attacks: %s, faults %v; want authorship OK and none", r.Verdict(), r.Faults)
	}

	// 4. An admin (who may write the log, but holds no commit key) plants a commit that
	// names vic's last commit as its predecessor and enrolls vic in a study it never
	// joined.
	last, err := eventlog.NewStore(ajs).Load(ctx, "vic")
	if err != nil {
		t.Fatal(err)
	}
	study := domain.StudyRef{Object: domain.PreferenceStudy, Key: "never-joined"}
	forged := last.Commit
	forged.CommitID, forged.CommandID, forged.PrevHash, forged.Events = "forged", "forged", last.Hash, nil
	forged.State = forged.State.With(domain.Enrollment{Object: study.Object, Key: study.Key, Slug: study.Key,
		Action: "preference-experiment", State: domain.StateEnrolled, Branch: "treatment", EnrolledAt: at})
	raw, err := eventstore.EncodeCommit(forged)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := ajs.Publish(ctx, eventlog.EventSubject("vic"), raw)
	if err != nil {
		t.Fatalf("admin plants a commit: %v", err)
	}
	// studyd does not decide on it: vic never joined that study.
	at = at.Add(time.Minute)
	out := submit(domain.Command{Type: domain.CommandUnenroll, CommandID: "unenroll-forged", ClientID: "vic", At: at,
		Study: &study, Reason: domain.ReasonUnknown})
	if out.Status != client.OutcomeRejected || out.Code != domain.RejectIllegal {
		t.Errorf("unenroll from the planted enrollment: %+v, want rejected %s", out, domain.RejectIllegal)
	}
	if out := submit(optOut("after-forgery")); out.Status != client.OutcomeApplied {
		t.Errorf("command after the forgery: %+v, want applied", out)
	}
	r := report(key)
	var found bool
	for _, f := range r.Faults {
		found = found || f.Kind == studydaudit.FaultAuthorship && f.Seq == ack.Sequence
		if f.Kind != studydaudit.FaultAuthorship {
			t.Errorf("unexpected fault %v", f)
		}
	}
	if !found || !strings.Contains(r.Verdict(), "authorship FAILED") || !strings.Contains(r.Verdict(), "chain OK") {
		t.Errorf("verify with the commit key: %s, faults %v; want the planted commit at seq %d named", r.Verdict(), r.Faults, ack.Sequence)
	}
	if r := report(nil); !strings.Contains(r.Verdict(), "authorship NOT CHECKED") {
		t.Errorf("verify without the key: %s, want authorship NOT CHECKED", r.Verdict())
	}
	t.Logf("verdict with the key after the planted commit: %s", r.Verdict())
}

// cmdJSON is a command as the nats CLI would send it.
func cmdJSON(c domain.Command) ([]byte, error) { return json.Marshal(c) }

// waitKV opens a bucket once the projector has created it.
func waitKV(ctx context.Context, t *testing.T, js jetstream.JetStream, bucket string) jetstream.KeyValue {
	t.Helper()
	var kv jetstream.KeyValue
	waitFor(ctx, t, "bucket "+bucket, func() bool {
		var err error
		kv, err = js.KeyValue(ctx, bucket)
		return err == nil
	})
	return kv
}

// waitFor polls cond every 50 ms for up to a minute.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
