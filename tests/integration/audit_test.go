package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/simulate"
)

// workload is a simulated fleet's commands, ready to publish, and what applying them
// in order must record.
type workload struct {
	Msgs []outMsg
	Want simulate.Tally
}

// newWorkload generates every command of cfg's fleet.
func newWorkload(t *testing.T, cfg simulate.Config) workload {
	t.Helper()
	fleet, err := simulate.New(cfg)
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	var w workload
	err = fleet.Each(func(cmd domain.Command) error {
		body, err := client.EncodeCommand(cmd)
		if err != nil {
			return err
		}
		w.Msgs = append(w.Msgs, outMsg{
			Subject: client.CommandSubject(cmd.ClientID),
			ID:      client.CommandMsgID(cmd),
			Name:    cmd.CommandID,
			Key:     string(cmd.ClientID), // one client's commands in order
			Data:    body,
		})
		return nil
	})
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	w.Want = fleet.Tally()
	return w
}

// audit is what the event log holds, read back independently of studyd.
type audit struct {
	Commits     map[string]int // commits per command id
	Rejections  map[string]int // rejections per command id
	Codes       map[domain.RejectionCode]int
	Examples    []string             // the first few rejections, for the failure message
	CommitTimes []time.Time          // when JetStream stored each commit
	CommitAt    map[string]time.Time // when the commit of each command was stored
	LastSeq     uint64               // sequence of the last commit
	Tally       simulate.Tally
	Uptake      *projections.Uptake
	Studies     *projections.Studies
}

// readAudit reads the whole of STUDYD_EVENTS, decoding every commit and rejection, and
// folds the commits with the pure projections.
func readAudit(ctx context.Context, t *testing.T, js jetstream.JetStream) audit {
	t.Helper()
	var a audit
	retryRead(t, func() (err error) {
		a, err = readAuditOnce(ctx, js)
		return err
	})
	return a
}

// readAuditOnce is one attempt of readAudit.
func readAuditOnce(ctx context.Context, js jetstream.JetStream) (audit, error) {
	a := audit{
		Commits: map[string]int{}, CommitAt: map[string]time.Time{}, Rejections: map[string]int{}, Codes: map[domain.RejectionCode]int{},
		Tally: simulate.Tally{Commands: map[domain.CommandType]int{}, Events: map[domain.EventType]int{},
			Uptake: map[domain.UptakeStatus]int{}, Studies: map[string]simulate.StudyTally{}},
		Uptake: projections.NewUptake(), Studies: projections.NewStudies(),
	}
	err := readStream(ctx, js, "STUDYD_EVENTS", func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		switch {
		case strings.HasPrefix(m.Subject(), "studyd.evt."):
			c, err := eventstore.DecodeCommit(m.Data())
			if err != nil {
				return fmt.Errorf("commit at %d: %w", seq, err)
			}
			a.Commits[c.CommandID]++
			a.CommitTimes = append(a.CommitTimes, md.Timestamp)
			a.CommitAt[c.CommandID] = md.Timestamp
			a.LastSeq = seq
			a.Tally.Add(c.CommandType, c.Events)
			a.Uptake.Apply(seq, &c)
			a.Studies.Apply(seq, &c)
		case strings.HasPrefix(m.Subject(), "studyd.rej."):
			r, err := eventstore.DecodeRejection(m.Data())
			if err != nil {
				return fmt.Errorf("rejection at %d: %w", seq, err)
			}
			a.Rejections[r.CommandID]++
			a.Codes[r.Code]++
			if len(a.Examples) < 5 {
				a.Examples = append(a.Examples, fmt.Sprintf("seq %d at %s: %s %s: %s",
					seq, md.Timestamp.Format("15:04:05.000"), r.CommandID, r.Code, r.Error))
			}
		}
		return nil
	})
	return a, err
}

// checkExactlyOnce asserts that every accepted command has exactly one outcome in the
// log, that no command was committed twice, and that nothing unaccepted was applied;
// it returns how many accepted commands were lost and duplicated.
func checkExactlyOnce(t *testing.T, accepted []string, a audit) (lost, dup int) {
	t.Helper()
	acc := make(map[string]bool, len(accepted))
	for _, id := range accepted {
		acc[id] = true
		switch n := a.Commits[id] + a.Rejections[id]; {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	twice, unknown := 0, 0
	for id, n := range a.Commits {
		if n > 1 {
			twice++
		}
		if !acc[id] {
			unknown++
		}
	}
	if lost != 0 {
		t.Errorf("got %d accepted commands with no commit or rejection, want 0", lost)
	}
	if dup != 0 {
		t.Errorf("got %d accepted commands with more than one outcome, want 0", dup)
	}
	if twice != 0 {
		t.Errorf("got %d command ids committed more than once, want 0", twice)
	}
	if unknown != 0 {
		t.Errorf("got %d commits of commands never accepted, want 0", unknown)
	}
	return lost, dup
}

// checkTally asserts that the log records exactly what the simulation decided: a clean
// simulation is accepted in full, so there is no rejection either.
func checkTally(t *testing.T, w workload, a audit) {
	t.Helper()
	if n := len(a.Rejections); n != 0 {
		t.Errorf("got %d rejected commands (by code %v), want 0 for a clean simulation; first ones:\n%s",
			n, a.Codes, strings.Join(a.Examples, "\n"))
	}
	if diff := cmp.Diff(w.Want, a.Tally, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("log tally differs from the simulation (-want +got):\n%s", diff)
	}
}

// waitDrained waits until STUDYD_CMDS is empty: a work-queue stream deletes a command
// once studyd acked it, so empty means every accepted command was settled.
func waitDrained(ctx context.Context, t *testing.T, js jetstream.JetStream, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		s, err := js.Stream(ctx, client.CommandsStream)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil {
				if info.State.Msgs == 0 {
					return
				}
				last = fmt.Sprintf("%d commands still queued", info.State.Msgs)
			}
		}
		if err != nil {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("commands not drained after %v: %s", timeout, last)
}

// checkProjections waits until the materialised views reflect the log's last commit
// and asserts that they equal the test's own fold of the whole log.
func checkProjections(ctx context.Context, t *testing.T, js jetstream.JetStream, a audit) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var (
		uptake  *projections.Uptake
		studies *projections.Studies
		seq     uint64
		err     error
	)
	for {
		var v client.Views
		v, err = client.ReadViews(ctx, js, client.AllViews)
		seq = v.Checkpoint
		if err == nil {
			uptake, studies, err = v.Projections()
		}
		if err == nil && seq >= a.LastSeq {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("views reflect sequence %d (err %v), want %d (the last commit)", seq, err, a.LastSeq)
			logReplicas(ctx, t, js, "KV_"+client.ProjectionBucket, "KV_"+client.UptakeBucket, "KV_"+client.StudiesBucket)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	if diff := cmp.Diff(a.Uptake.Counts, uptake.Counts, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("uptake view differs from a replay of the log (-replay +view):\n%s", diff)
	}
	ignoreSeq := cmpopts.IgnoreFields(projections.StudyView{}, "Seq")
	if diff := cmp.Diff(a.Studies.Views, studies.Views, cmpopts.EquateEmpty(), ignoreSeq); diff != "" {
		t.Errorf("study views differ from a replay of the log (-replay +view):\n%s", diff)
	}
}

// commitStall is the longest time between two consecutive commits within [from, to].
func commitStall(a audit, from, to time.Time) time.Duration { return maxGap(a.CommitTimes, from, to) }

// logReplicas writes where each stream's replicas stand, to tell a stalled writer from
// a reader served by a replica that fell behind.
func logReplicas(ctx context.Context, t *testing.T, js jetstream.JetStream, streams ...string) {
	t.Helper()
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Logf("stream %s: %v", name, err)
			continue
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			t.Logf("stream %s: info %v", name, err)
			continue
		}
		line := fmt.Sprintf("stream %s: last seq %d, leader %s", name, info.State.LastSeq, info.Cluster.Leader)
		for _, r := range info.Cluster.Replicas {
			line += fmt.Sprintf("; replica %s current %v lag %d offline %v", r.Name, r.Current, r.Lag, r.Offline)
		}
		t.Log(line)
	}
}
