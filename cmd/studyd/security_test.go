package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/domain"
)

// studydRun is one run of studyd on the embedded default, in-process.
type studydRun struct {
	listen string
	stderr *syncBuffer
	done   chan error
	cancel context.CancelFunc
	once   sync.Once
}

// startEmbeddedStudyd runs studyd on dir and waits until it is ready, or returns the
// error it exited with first.
func startEmbeddedStudyd(t *testing.T, dir string, extra ...string) (*studydRun, error) {
	t.Helper()
	r := &studydRun{listen: freeAddr(t), stderr: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var stdout syncBuffer
	go func() {
		r.done <- run(ctx, append([]string{"--data", dir, "--nats-listen", r.listen, "--http", "", "--partitions", "2"}, extra...),
			func(string) string { return "" }, &stdout, r.stderr)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(stdout.String(), "studyd ready") {
		select {
		case err := <-r.done:
			cancel()
			return nil, err
		case <-deadline:
			cancel()
			t.Fatalf("studyd not ready in 30s; log:\n%s", r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() { r.stop(t) })
	return r, nil
}

func (r *studydRun) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})
}

// TestEmbeddedDefaultIsLeastPrivilege: on `make run`'s default a connection without
// credentials — the nats CLI of the README — may send commands and read, and may not
// delete, purge or write the log or the views; the admin nkey and the commit key are
// in the data directory, mode 0600.
func TestEmbeddedDefaultIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := startEmbeddedStudyd(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	anon, err := nats.Connect("nats://"+r.listen, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	js, _ := jetstream.New(anon)
	out, err := client.Submit(ctx, anon, domain.Command{Type: domain.CommandOptOut, CommandID: "c1", ClientID: "client-1",
		At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)})
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("anonymous submit: %+v, %v; want applied", out, err)
	}
	events, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		t.Fatalf("anonymous stream info: %v", err)
	}
	// A commit by its sequence, as studyctl asof reads it: a direct get that names no
	// subject (the role allowed only those that did, and asof failed for the publisher).
	if m, err := events.GetMsg(ctx, out.Seq); err != nil || m.Sequence != out.Seq {
		t.Errorf("anonymous read of the commit at seq %d: %v", out.Seq, err)
	}
	for _, tt := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"nats stream rm STUDYD_EVENTS", func(ctx context.Context) error { return js.DeleteStream(ctx, eventlog.EventsStream) }},
		{"nats stream purge STUDYD_EVENTS", func(ctx context.Context) error {
			_, err := anon.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+eventlog.EventsStream, nil)
			return err
		}},
		{"nats stream rm STUDYD_CMDS", func(ctx context.Context) error { return js.DeleteStream(ctx, "STUDYD_CMDS") }},
		{"publish a commit", func(ctx context.Context) error {
			_, err := js.Publish(ctx, eventlog.EventSubject("client-1"), []byte("forged"))
			return err
		}},
		{"nats kv put", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "$KV."+client.UptakeBucket+".runner.RUNNER_SUCCESS", []byte("0"))
			return err
		}},
		{"nats kv rm bucket", func(ctx context.Context) error { return js.DeleteKeyValue(ctx, client.ProjectionBucket) }},
	} {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		if err := tt.do(octx); err == nil {
			t.Errorf("anonymous %s: got nil error, want a refusal", tt.name)
		}
		cancel()
	}
	if _, err := js.Stream(ctx, eventlog.EventsStream); err != nil {
		t.Errorf("the log after the attempts: %v", err)
	}
	for _, f := range []string{adminKeyFile, commitKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want a file of mode 0600", f, fi, err)
		}
	}
}

// TestRefusesALostLog: the log deleted under its views (by an admin, now that nobody
// else can) makes studyd refuse to start, naming the problem and the recovery, instead
// of silently beginning a new log at seq 1 that the views never see.
func TestRefusesALostLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := startEmbeddedStudyd(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect("nats://" + r.listen)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.Submit(ctx, nc, domain.Command{Type: domain.CommandOptOut, CommandID: "c1", ClientID: "client-1",
		At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)})
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("submit: %+v, %v", out, err)
	}
	waitCheckpoint(ctx, t, nc, out.Seq)
	nc.Close()
	r.stop(t)

	// An admin deletes the log while studyd is down.
	roles := &embedded.Roles{AdminKeyFile: filepath.Join(dir, adminKeyFile)}
	ns, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "jetstream"), Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := nats.NkeyOptionFromSeed(roles.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	anc, err := nats.Connect("", nats.InProcessServer(ns), adminKey)
	if err != nil {
		t.Fatal(err)
	}
	ajs, _ := jetstream.New(anc)
	if err := ajs.DeleteStream(ctx, eventlog.EventsStream); err != nil {
		t.Fatal(err)
	}
	anc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	_, err = startEmbeddedStudyd(t, dir)
	if !errors.Is(err, views.ErrLogLost) || !strings.Contains(err.Error(), "--reset-views") {
		t.Fatalf("restart on a deleted log: got %v, want ErrLogLost with the recovery", err)
	}
	// The documented way on: --reset-views, and the new log's commits reach the views.
	r, err = startEmbeddedStudyd(t, dir, "--reset-views")
	if err != nil {
		t.Fatalf("restart with --reset-views: %v", err)
	}
	nc, err = nats.Connect("nats://" + r.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	out, err = client.Submit(ctx, nc, domain.Command{Type: domain.CommandOptOut, CommandID: "c2", ClientID: "client-2",
		At: time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)})
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("submit after --reset-views: %+v, %v", out, err)
	}
	waitCheckpoint(ctx, t, nc, out.Seq)
}

// waitCheckpoint waits until the views' checkpoint reaches seq.
func waitCheckpoint(ctx context.Context, t *testing.T, nc *nats.Conn, seq uint64) {
	t.Helper()
	js, _ := jetstream.New(nc)
	for {
		if proj, err := js.KeyValue(ctx, client.ProjectionBucket); err == nil {
			if cp, _, err := client.LoadViewCheckpoint(ctx, proj, client.NearestEntry); err == nil && cp.Seq >= seq {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("views never reached seq %d", seq)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
