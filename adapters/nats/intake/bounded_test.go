package intake_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

// hugeRecipes is the 74-byte recipe_run of issue 12, case 1, for client-1: its recipes
// array header (dd ff ff ff ff, at offset 69) declares 4,294,967,295 elements, for which
// the unbounded decoder allocated ~700 GB and studyd died, again after every restart.
var hugeRecipes, _ = hex.DecodeString("85a474797065aa7265636970655f72756eaa636f6d6d616e645f6964a472756e31" +
	"a9636c69656e745f6964a8636c69656e742d31a26174d6ff5aa68860a772656369706573ddffffffff")

// inBoundedProcess runs the calling test again in a child process whose address space
// is capped at 2 GiB beyond what it maps at start and whose Go heap is limited to
// 512 MiB, and fails if the child fails. An allocation of hundreds of GB dies there
// ("out of memory") without touching the machine. It returns true in the child, which
// then runs the test's body.
func inBoundedProcess(t *testing.T) bool {
	const env = "STUDYD_BOUNDED_CHILD"
	if os.Getenv(env) == t.Name() {
		debug.SetMemoryLimit(512 << 20)
		limit := vmSize(t) + 2<<30
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		lines := strings.SplitN(string(out), "\n", 41)
		t.Fatalf("the bounded child failed (%v):\n%s", err, strings.Join(lines[:min(40, len(lines))], "\n"))
	}
	return false
}

func vmSize(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}

// Issue 12, case 1: the 74-byte body is refused as malformed, naming the offset, on the
// JetStream intake (with and without a Content-Type) and on studyd.submit, and the
// partition moves on to the client's next command.
func TestHugeArrayHeaderIsRefusedAndThePartitionMovesOn(t *testing.T) {
	if !inBoundedProcess(t) {
		return
	}
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	for _, ct := range []string{"", client.ContentTypeMsgpack} {
		out := publish(t, nc, js, "studyd.cmd.client-1", ct, string(hugeRecipes))
		if out.Status != client.OutcomeRejected || out.Code != domain.RejectMalformed || !strings.Contains(out.Error, "offset 69") {
			t.Fatalf("intake, content type %q: outcome %+v, want rejected/malformed naming offset 69", ct, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := client.SubmitRaw(ctx, nc, client.ContentTypeMsgpack, hugeRecipes)
	if err != nil || out.Status != client.OutcomeRejected || out.Code != domain.RejectMalformed || !strings.Contains(out.Error, "offset 69") {
		t.Fatalf("studyd.submit: outcome %+v, %v; want rejected/malformed naming offset 69", out, err)
	}
	if out := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeJSON, optOut("client-1", "after")); out.Status != client.OutcomeApplied {
		t.Fatalf("the client's next command: %+v, want applied", out)
	}
}

// Found by wire.FuzzDecodeCommand: msgpack v5.4.1 panics decoding a nil `at`, so this
// five-byte body killed studyd (the intake's goroutine has no recover), again after
// every restart, like the 74-byte one. It is refused as malformed on the intake and on
// studyd.submit, and the partition moves on. (In a child process: the old decoder's
// panic takes the whole test binary down.)
func TestNilAtIsRefusedAndThePartitionMovesOn(t *testing.T) {
	if !inBoundedProcess(t) {
		return
	}
	nilAt := "\x84\xa4type\xa7opt_out\xaacommand_id\xa2n1\xa9client_id\xa8client-1\xa2at\xc0"
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	for _, body := range []string{"\x81\xa2at\xc0", nilAt} {
		out := publish(t, nc, js, "studyd.cmd.client-1", "", body)
		if out.Status != client.OutcomeRejected || out.Code != domain.RejectMalformed {
			t.Fatalf("intake, %q: outcome %+v, want rejected/malformed", body, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := client.SubmitRaw(ctx, nc, client.ContentTypeMsgpack, []byte(nilAt))
	if err != nil || out.Status != client.OutcomeRejected || out.Code != domain.RejectMalformed {
		t.Fatalf("studyd.submit: outcome %+v, %v; want rejected/malformed", out, err)
	}
	if out := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeJSON, optOut("client-1", "after")); out.Status != client.OutcomeApplied {
		t.Fatalf("the client's next command: %+v, want applied", out)
	}
}

// addonRun is a msgpack recipe_run of n add-on recipes whose installs failed with
// 1,000-byte reasons.
func addonRun(t *testing.T, clientID domain.ClientID, id string, n int) []byte {
	t.Helper()
	cmd := domain.Command{Type: domain.CommandRecipeRun, CommandID: id, ClientID: clientID,
		At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), RunnerStatus: domain.RunnerSuccess,
		Actions: []domain.ActionReport{{Name: "addon-study", Status: domain.ActionSuccess}}}
	reason := ("resource://gre/modules/AddonManager.jsm:1:1 NS_ERROR_FAILURE " + strings.Repeat("x", 1000))[:1000]
	for i := range n {
		cmd.Recipes = append(cmd.Recipes, domain.RecipeReport{ID: domain.RecipeID(1000 + i), Action: "addon-study",
			Status: domain.RecipeExecutionError, Arguments: recipe.Must(map[string]any{"slug": fmt.Sprintf("addon-%d", i), "installError": reason})})
	}
	b, err := client.EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 12, case 2: against a server with the default 1 MiB max_payload, a valid run
// whose commit is larger was retried for ever ("maximum payload exceeded" taken for a
// transient error) and the client's partition stopped. It is rejected too_large, once,
// and the client's next command is applied.
func TestCommitOverMaxPayloadIsRejectedAndThePartitionMovesOn(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.StartWith(t, natstest.Config{MaxPayload: 1 << 20})
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	startService(t, nc, js, store)
	body := addonRun(t, "client-1", "big-run", 900)
	if len(body) > domain.MaxCommandPayload {
		t.Fatalf("the command is %d bytes; the test needs one under %d", len(body), domain.MaxCommandPayload)
	}
	out := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeMsgpack, string(body))
	if out.Status != client.OutcomeRejected || out.Code != domain.RejectTooLarge {
		t.Fatalf("a %d-byte run whose commit exceeds 1 MiB: outcome %+v, want rejected/%s", len(body), out, domain.RejectTooLarge)
	}
	if out := publish(t, nc, js, "studyd.cmd.client-1", client.ContentTypeJSON, optOut("client-1", "after")); out.Status != client.OutcomeApplied {
		t.Fatalf("the client's next command: %+v, want applied", out)
	}
}

// Issue 12, case 3: `at` in year 9999 (JSON, which is 10000 in UTC) or 20983 (msgpack)
// was accepted and froze the views. Both are rejected invalid, naming the range.
func TestAtOutOfRangeIsRejected(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	startService(t, nc, js, store)
	far, err := client.EncodeCommand(domain.Command{Type: domain.CommandOptOut, CommandID: "far", ClientID: "c1",
		At: time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, contentType, body string }{
		{"json 9999-12-31T23:00-05:00", client.ContentTypeJSON,
			`{"type":"opt_out","command_id":"y9999","client_id":"c1","at":"9999-12-31T23:00:00-05:00"}`},
		{"json 2050", client.ContentTypeJSON, `{"type":"opt_out","command_id":"y2050","client_id":"c1","at":"2050-01-01T00:00:00Z"}`},
		{"msgpack 20983", client.ContentTypeMsgpack, string(far)},
	} {
		out := publish(t, nc, js, "studyd.cmd.c1", tc.contentType, tc.body)
		if out.Status != client.OutcomeRejected || out.Code != domain.RejectInvalid || !strings.Contains(out.Error, "at ") {
			t.Errorf("%s: outcome %+v, want rejected/invalid naming at", tc.name, out)
		}
	}
	if rec, err := store.Load(context.Background(), "c1"); err != nil || rec.Position != 0 {
		t.Fatalf("client c1 has a commit at %d (%v), want none", rec.Position, err)
	}
}

// Issue 12, case 8: after STUDYD_CMDS is recreated (as the --partitions mismatch error
// invites), its sequences restart at 1, and "sequence ≤ the client's recorded
// sequence" answered every new command of an existing client duplicate: dropped. New
// commands are applied.
func TestRecreatedCommandsStreamAppliesNewCommands(t *testing.T) {
	t.Parallel()
	nc, js, store := setup(t)
	ctx := context.Background()
	stop := startIntake(t, nc, js, store)
	for i := range 5 {
		if out := publish(t, nc, js, "studyd.cmd.c1", client.ContentTypeJSON, optOutAt("c1", fmt.Sprintf("old-%d", i), i)); out.Status != client.OutcomeApplied {
			t.Fatalf("old-%d: %+v, want applied", i, out)
		}
	}
	stop()
	if err := js.DeleteStream(ctx, client.CommandsStream); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	startIntake(t, nc, js, store)
	out := publish(t, nc, js, "studyd.cmd.c1", client.ContentTypeJSON, optOutAt("c1", "new-1", 10))
	if out.Status != client.OutcomeApplied {
		t.Fatalf("a new command on the recreated stream: %+v, want applied", out)
	}
	rec, err := store.Load(ctx, "c1")
	if err != nil || rec.Commit.CommandID != "new-1" {
		t.Fatalf("the client's latest commit is %q (%v), want new-1", rec.Commit.CommandID, err)
	}
}

func optOutAt(clientID, id string, minute int) string {
	return fmt.Sprintf(`{"type":"opt_out","command_id":%q,"client_id":%q,"at":"2026-11-27T10:%02d:00Z","studies_enabled":%t}`,
		id, clientID, minute, minute%2 == 1)
}

// startIntake runs an intake alone and returns its stop function (also run at cleanup).
func startIntake(t *testing.T, nc *nats.Conn, js jetstream.JetStream, store eventstore.Store) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := intake.New(nc, js, app.NewHandler(store, app.Config{}), intake.Config{Partitions: testPartitions, AckWait: time.Second})
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("intake.Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}
