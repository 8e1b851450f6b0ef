package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
)

// syncBuffer is a bytes.Buffer safe for the service's writers and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesCommandsAndDrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	listen, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--data", dir, "--nats-listen", listen, "--http", httpAddr, "--partitions", "2"},
			func(string) string { return "" }, &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "studyd ready") {
		if time.Now().After(deadline) {
			t.Fatalf("studyd not ready; log:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	nc, err := client.Connect(client.ConnConfig{URLs: "nats://" + listen})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	out, err := client.Submit(ctx, nc, domain.Command{Type: domain.CommandOptOut, CommandID: "t1", ClientID: "client-1",
		At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)})
	if err != nil || out.Status != client.OutcomeApplied {
		t.Fatalf("Submit = %+v, %v; want applied", out, err)
	}
	// The views catch up with the commit, and /metrics says so.
	deadline = time.Now().Add(20 * time.Second)
	want := fmt.Sprintf("studyd_projection_seq %d\n", out.Seq)
	var metrics string
	for !strings.Contains(metrics, want) || !strings.Contains(metrics, "studyd_projector_leading 1\n") {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q and a leading projector:\n%s", want, grep(metrics, "studyd_project"))
		}
		time.Sleep(50 * time.Millisecond)
		metrics = get(t, "http://"+httpAddr+"/metrics")
	}
	// Operators' figures: the build, the backlog per partition, the views' lag.
	for _, w := range []string{`studyd_build_info{go_version="`, `studyd_command_backlog{partition="0"} 0`,
		`studyd_command_backlog{partition="1"} 0`, "studyd_projection_lag_seqs 0", "studyd_projection_lag_seconds 0"} {
		if !strings.Contains(metrics, w) {
			t.Errorf("/metrics lacks %s:\n%s", w, grep(metrics, "studyd_"))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil after a clean shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), "studyd stopped") {
		t.Errorf("log lacks the drain message; log:\n%s", stderr.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// grep returns the lines of s containing sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestParseConfigRejectsBadSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		mention string
	}{
		{name: "zero partitions", args: []string{"--partitions", "0"}, mention: "--partitions"},
		{name: "replicas without cluster", args: []string{"--replicas", "3"}, mention: "--nats-url"},
		{name: "two auth methods", args: []string{"--nats-url", "nats://x", "--user", "u", "--token", "t"}, mention: "only one"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, mention: "--log-level"},
		{name: "bad env partitions", env: map[string]string{"STUDYD_PARTITIONS": "abc"}, mention: `$STUDYD_PARTITIONS="abc"`},
		{name: "bad env duration", env: map[string]string{"STUDYD_ACK_WAIT": "5"}, mention: `$STUDYD_ACK_WAIT="5"`},
		{name: "bad env beside a good flag", args: []string{"--partitions", "4"}, env: map[string]string{"STUDYD_CACHE": "lots"}, mention: "STUDYD_CACHE"},
		{name: "bad flag", args: []string{"--partitions", "abc"}, mention: "-partitions"},
		{name: "stray argument", args: []string{"serve"}, mention: "unexpected"},
		{name: "reply prefix on the log", args: []string{"--reply-prefix", "studyd.evt."}, mention: "--reply-prefix"},
		{name: "reply prefix on the JetStream API", env: map[string]string{"STUDYD_REPLY_PREFIX": "_INBOX.,$JS."}, mention: "--reply-prefix"},
		{name: "sync is not a duration", args: []string{"--sync", "sometimes"}, mention: "want always or an interval"},
		{name: "sync on a cluster", args: []string{"--nats-url", "nats://x", "--sync", "always"}, mention: "sync_interval"},
		{name: "poison after once", args: []string{"--poison-after", "1"}, mention: "--poison-after"},
		{name: "at range not a date", args: []string{"--at-not-before", "yesterday"}, mention: "--at-not-before"},
		{name: "cache bytes not a size", args: []string{"--cache-bytes", "lots"}, mention: "--cache-bytes"},
		{name: "cache bytes too small", args: []string{"--cache-bytes", "10KiB"}, mention: "--cache-bytes"},
		{name: "at range ahead zero", args: []string{"--at-max-ahead", "0s"}, mention: "--at-max-ahead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			_, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("parseConfig(%v) error = %v, want one mentioning %q", tt.args, err, tt.mention)
			}
		})
	}
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"STUDYD_PARTITIONS": "32", "STUDYD_NATS_URL": "nats://a:4222,nats://b:4222", "STUDYD_NATS_PASSWORD": "s3cret", "STUDYD_NATS_USER": "svc"}[k]
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Partitions != 32 || cfg.embedded() || cfg.Conn.Password != "s3cret" {
		t.Errorf("env config = %+v, want 32 partitions, external NATS, the password", cfg)
	}
}

func TestCacheBytesSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{name: "default", want: 128 << 20},
		{name: "mebibytes", args: []string{"--cache-bytes", "64MiB"}, want: 64 << 20},
		{name: "gibibytes from env", env: map[string]string{"STUDYD_CACHE_BYTES": "2GiB"}, want: 2 << 30},
		{name: "plain bytes", args: []string{"--cache-bytes", "5000000"}, want: 5_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CacheBytes != tt.want {
				t.Errorf("CacheBytes = %d, want %d", cfg.CacheBytes, tt.want)
			}
		})
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
		if err != nil {
			t.Errorf("studyd %v: error %v, want none (exit 0)", args, err)
		}
		want := "usage: studyd"
		if args[0] == "--version" {
			want = "studyd "
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("studyd %v printed %q on stdout, want %q", args, stdout.String(), want)
		}
		if stderr.Len() != 0 {
			t.Errorf("studyd %v wrote %q on stderr, want nothing (the usage once, on stdout)", args, stderr.String())
		}
	}
}

// TestConfigLoggedReadably: the start-up log shows the effective configuration as
// attributes, durations as durations, secrets masked.
func TestConfigLoggedReadably(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"--nats-url", "nats://a:4222", "--user", "svc", "--password", "s3cret", "--ack-wait", "7s"},
		func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"json", "text"} {
		cfg.LogFormat = format
		var buf bytes.Buffer
		newLogger(cfg, &buf).Info("studyd starting", "config", cfg)
		got := buf.String()
		want := []string{`"ack_wait":"7s"`, `"checkpoint_every":"1m0s"`, `"password":"*****"`, `"partitions":16`, `"user":"svc"`}
		if format == "text" {
			want = []string{"config.ack_wait=7s", "config.checkpoint_every=1m0s", "config.password=*****", "config.partitions=16"}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s log %s lacks %s", format, got, w)
			}
		}
		for _, bad := range []string{"s3cret", "7000000000", "{DataDir"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s log %s contains %q", format, got, bad)
			}
		}
	}
	if r := cfg.atRange(); !r.NotBefore.Equal(time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)) || r.MaxAhead != 24*time.Hour {
		t.Errorf("default at range = %+v, want 2016-01-01 and 24h", r)
	}
	cfg, err = parseConfig([]string{"--at-not-before", "2018-01-01", "--at-max-ahead", "1h"}, func(k string) string {
		return map[string]string{"STUDYD_AT_MAX_AHEAD": "5h"}[k]
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.atRange(); !r.NotBefore.Equal(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)) || r.MaxAhead != time.Hour {
		t.Errorf("at range = %+v, want 2018-01-01 and 1h", r)
	}
}

// getQuiet returns url's body, or "" when it cannot be fetched (not up yet).
func getQuiet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSyncDefaultsToAlways: an acknowledgement means on disk unless told otherwise
// (issue 12, case 11: the embedded server synced every 2 minutes).
func TestSyncDefaultsToAlways(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args     []string
		env      string
		always   bool
		interval time.Duration
	}{
		{always: true},
		{args: []string{"--sync", "250ms"}, interval: 250 * time.Millisecond},
		{env: "1s", interval: time.Second},
		{args: []string{"--sync", "always"}, env: "1s", always: true},
	} {
		cfg, err := parseConfig(tt.args, func(k string) string {
			if k == "STUDYD_SYNC" {
				return tt.env
			}
			return ""
		}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("parseConfig(%v, STUDYD_SYNC=%q): %v", tt.args, tt.env, err)
		}
		if cfg.Sync.Always != tt.always || cfg.Sync.Interval != tt.interval {
			t.Errorf("parseConfig(%v, STUDYD_SYNC=%q): sync %+v; want always %t, interval %s", tt.args, tt.env, cfg.Sync, tt.always, tt.interval)
		}
	}
}

// TestReadyzNamesStuckPartitionsAndParkedCommands: a stuck partition makes studyd not
// ready and is named; parked commands are listed without failing readiness.
func TestReadyzNamesStuckPartitionsAndParkedCommands(t *testing.T) {
	t.Parallel()
	rd := &readiness{}
	rd.step("stream STUDYD_EVENTS", 3, errors.New("nats: timeout"))
	if ok, body := rd.report(); ok || body != "not ready: starting, waiting for stream STUDYD_EVENTS (attempt 3 failed: nats: timeout)\n" {
		t.Errorf("starting: got %t %q", ok, body)
	}
	var problems, notes []string
	rd.ready(func() ([]string, []string) { return problems, notes })
	if ok, body := rd.report(); !ok || body != "ready\n" {
		t.Errorf("healthy: got %t %q", ok, body)
	}
	problems = []string{"partition 3 stuck since …: command at STUDYD_CMDS seq 17 failed 4 times in a row: boom"}
	notes = []string{"parked commands: 2 in STUDYD_PARKED (studyctl parked)"}
	ok, body := rd.report()
	if ok || !strings.Contains(body, "not ready\npartition 3 stuck") || !strings.Contains(body, "parked commands: 2") {
		t.Errorf("stuck: got %t %q; want not ready naming the partition and the parked commands", ok, body)
	}
	problems = nil
	if ok, body := rd.report(); !ok || !strings.Contains(body, "ready\nparked commands: 2") {
		t.Errorf("parked only: got %t %q; want ready with the note", ok, body)
	}
	rd.stop()
	if ok, _ := rd.report(); ok {
		t.Error("draining: got ready")
	}
}

// Batches of commits are atomic batches where every write is an fsync (the embedded
// server's default, --sync always), and in flight together elsewhere, unless --append
// says otherwise; a mode that does not exist is refused by name.
func TestAppendSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		atomic bool
	}{
		{name: "default: embedded, sync always", atomic: true},
		{name: "embedded, sync every second", args: []string{"--sync", "1s"}, atomic: false},
		{name: "a cluster", args: []string{"--nats-url", "nats://a:4222"}, atomic: false},
		{name: "atomic on a cluster", args: []string{"--nats-url", "nats://a:4222", "--append", "atomic"}, atomic: true},
		{name: "async from env", env: map[string]string{"STUDYD_APPEND": "async"}, atomic: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.atomicAppends(); got != tt.atomic {
				t.Errorf("atomic appends = %t, want %t", got, tt.atomic)
			}
		})
	}
	if _, err := parseConfig([]string{"--append", "sometimes"}, func(string) string { return "" }, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--append") {
		t.Errorf("--append sometimes: %v, want an error naming --append", err)
	}
}
