package eventlog_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// crashChildEnv tells a re-executed test binary to be the process that gets killed.
const crashChildEnv = "STUDYD_CRASH_CHILD_STORE_DIR"

const crashClients = 6

// TestStoreSurvivesKillMidAppend runs an embedded server and appending writers in a
// child process, SIGKILLs it at an arbitrary moment, restarts a server on the same
// store directory and reads the whole log back: every message must decode, each
// client's hash chain must be unbroken, and every commit the child saw acknowledged
// must be there.
func TestStoreSurvivesKillMidAppend(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("this is the child process's entry point, run by TestStoreSurvivesKillMidAppend")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildAppends$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Kill after a random number of acknowledged commits, while writers are mid-flight.
	killAfter := 300 + rand.IntN(300)
	acked := map[uint64]string{} // position → command id
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < killAfter {
		var pos uint64
		var cmdID string
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %s", &pos, &cmdID); err == nil {
			acked[pos] = cmdID
		}
	}
	if len(acked) < killAfter {
		t.Fatalf("child stopped after %d acknowledged commits (want %d): %v", len(acked), killAfter, sc.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	t.Logf("killed the child after %d acknowledged commits", len(acked))

	_, _, js := natstest.StartWith(t, natstest.Config{StoreDir: dir})
	ctx := t.Context()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatalf("EnsureEventsStream on the recovered store: %v", err)
	}
	s := eventlog.NewStore(js)

	last := map[domain.ClientID]eventstore.Record{}
	n := 0
	err = s.Read(ctx, eventstore.Query{}, func(r eventstore.Record) error {
		c := r.Commit
		if c.PrevHash != last[c.Client].Hash {
			return fmt.Errorf("%s at %d: chain broken: prev hash %q, want %q", c.CommandID, r.Position, c.PrevHash, last[c.Client].Hash)
		}
		if want, ok := acked[r.Position]; ok && want != c.CommandID {
			return fmt.Errorf("position %d holds %s, the child was acknowledged %s", r.Position, c.CommandID, want)
		}
		delete(acked, r.Position)
		last[c.Client] = r
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("read back the log: %v", err)
	}
	if len(acked) != 0 {
		t.Errorf("%d acknowledged commits are missing after the kill", len(acked))
	}
	t.Logf("read back %d commits over %d clients", n, len(last))

	// The recovered log takes the next commit on every client's chain.
	for client, prev := range last {
		next := crashCommit(client, prev, "after-restart", 0)
		if _, err := s.Append(ctx, next, prev.Position); err != nil {
			t.Errorf("append to %s after the restart: %v", client, err)
		}
	}
}

// TestCrashChildAppends is the child of TestStoreSurvivesKillMidAppend: it appends
// until killed, printing "ack <position> <command id>" for every acknowledged commit.
func TestCrashChildAppends(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestStoreSurvivesKillMidAppend")
	}
	srv, err := embedded.Start(embedded.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventlog.EnsureEventsStream(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	s := eventlog.NewStore(js)
	var mu sync.Mutex
	stdout := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				client := domain.ClientID("client-" + strconv.Itoa((w+i)%crashClients))
				cmdID := fmt.Sprintf("w%d-%d", w, i)
				for {
					prev, err := s.Load(t.Context(), client)
					if err != nil {
						panic(err)
					}
					r, err := s.Append(t.Context(), crashCommit(client, prev, cmdID, 40), prev.Position)
					if errors.Is(err, eventstore.ErrConflict) {
						continue
					}
					if err != nil {
						panic(err)
					}
					mu.Lock()
					fmt.Fprintf(stdout, "ack %d %s\n", r.Position, cmdID)
					stdout.Flush()
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait() // never returns: the parent kills this process
}

// crashCommit is a commit of realistic size: the client's state holds enrollments
// studies, so a kill has many bytes to land in the middle of.
func crashCommit(client domain.ClientID, prev eventstore.Record, cmdID string, studies int) eventstore.Commit {
	at := time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(prev.Position) * time.Second)
	state := domain.ClientState{Client: client, LastRunAt: at}
	for i := range studies {
		key := fmt.Sprintf("study-%03d", i)
		state.Enrollments = append(state.Enrollments, domain.Enrollment{
			Object: domain.PreferenceStudy, Key: key, Slug: key, Action: "preference-experiment",
			EnrollmentID: domain.EnrollmentID(client, domain.StudyRef{Object: domain.PreferenceStudy, Key: key}, cmdID),
			State:        domain.StateEnrolled, Branch: strings.Repeat("b", 20), ExperimentType: domain.ExperimentTypeExp,
			Preference: "browser." + key, EnrolledAt: at, LastSeen: at,
		})
	}
	return eventstore.Commit{
		CommitID: "commit-" + cmdID, CommandID: cmdID, CommandType: domain.CommandRecipeRun, Client: client, At: at,
		Events: []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}},
		State:  state, Recent: []eventstore.Applied{{CommandID: cmdID}}, PrevHash: prev.Hash,
	}
}
