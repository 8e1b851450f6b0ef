package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/domain"
)

// startRun runs studyd with args in the background.
func startRun(t *testing.T, ctx context.Context, args ...string) (*syncBuffer, *syncBuffer, chan error) {
	t.Helper()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, &stdout, &stderr) }()
	return &stdout, &stderr, done
}

// waitReadyz polls /readyz until its body contains want.
func waitReadyz(t *testing.T, httpAddr, want string, stderr *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	body := ""
	for !strings.Contains(body, want) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said %q; last %q; log:\n%s", want, body, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		body = getQuiet("http://" + httpAddr + "/readyz")
	}
	return body
}

// TestBusyPortExitsNamingIt: with the NATS port taken, studyd exits with the embedded
// server's own error naming the address, instead of waiting 30 s for readiness
// (issue 12, case 10).
func TestBusyPortExitsNamingIt(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	_, stderr, done := startRun(t, context.Background(), "--data", t.TempDir(), "--nats-listen", busy, "--http", "")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), busy) {
			t.Errorf("run error %v: want the server's \"address already in use\" naming %s", err, busy)
		}
		if !strings.Contains(stderr.String(), "address already in use") {
			t.Errorf("the embedded server's error is not in the log:\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return")
	}
}

// TestStartupWaitsForNATSAndSaysSo: against a cluster that is not there yet, studyd
// keeps retrying with /readyz naming what it waits for, becomes ready when the server
// comes, and SIGTERM (ctx) ends it cleanly at any point (issue 12, cases 10 and 12:
// it used to exit at the first failed step).
func TestStartupWaitsForNATSAndSaysSo(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, done := startRun(t, ctx, "--nats-url", "nats://"+natsAddr, "--http", httpAddr, "--partitions", "2")
	body := waitReadyz(t, httpAddr, "attempt 2 failed", stderr)
	if !strings.Contains(body, "not ready: starting, waiting for NATS nats://"+natsAddr) {
		t.Errorf("/readyz = %q: want it to name the server it waits for", body)
	}

	// The server comes up: studyd carries on and serves.
	ns, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Listen: natsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	waitReadyz(t, httpAddr, "ready\n", stderr)
	if !strings.Contains(stdout.String(), "studyd ready") {
		t.Errorf("stdout %q: want the ready line", stdout.String())
	}
	nc, err := client.Connect(client.ConnConfig{URLs: "nats://" + natsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	out, err := client.Submit(sctx, nc, domain.Command{Type: domain.CommandOptOut, CommandID: "w1", ClientID: "c-1", At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)})
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("Submit = %+v, %v; want applied", out, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestSIGTERMDuringStartup: stopping studyd while it waits for NATS ends it at once and
// cleanly.
func TestSIGTERMDuringStartup(t *testing.T) {
	t.Parallel()
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stderr, done := startRun(t, ctx, "--nats-url", "nats://"+freeAddr(t), "--http", httpAddr, "--partitions", "2")
	waitReadyz(t, httpAddr, "waiting for NATS", stderr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil when stopped during start-up", err)
		}
		if !strings.Contains(stderr.String(), "stopped during start-up") {
			t.Errorf("log lacks the stop:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel during start-up")
	}
}
