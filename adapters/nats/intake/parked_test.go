package intake_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// brokenClient is a store on which one client cannot be loaded while broken holds an
// error — as when its last commit was written by a newer studyd this build cannot read.
type brokenClient struct {
	eventstore.Store
	client domain.ClientID
	broken atomic.Pointer[error]
}

func (b *brokenClient) Load(ctx context.Context, c domain.ClientID) (eventstore.Record, error) {
	if e := b.broken.Load(); e != nil && c == b.client {
		return eventstore.Record{}, *e
	}
	return b.Store.Load(ctx, c)
}

// startPoisonable runs an intake with one partition (every client behind the same
// head) on a store where client "poison" fails as b says.
func startPoisonable(t *testing.T, poisonAfter int) (*brokenClient, *intake.Intake, *nats.Conn, context.Context, *prometheus.Registry) {
	t.Helper()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureParkedStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	b := &brokenClient{Store: eventlog.NewStore(js), client: "poison"}
	reg := prometheus.NewRegistry()
	in := intake.New(nc, js, app.NewHandler(b, app.Config{CacheSize: -1}),
		intake.Config{Partitions: 1, AckWait: 2 * time.Second, PoisonAfter: poisonAfter, Metrics: intake.NewMetrics(reg)})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("intake.Run: %v", err)
		}
	})
	return b, in, nc, ctx, reg
}

// TestPoisonCommandIsParkedAndItsPartitionMovesOn: a command that fails the same way
// every time is parked with its payload after PoisonAfter tries, recorded as a
// rejection with code parked, and the commands behind it are applied; after the cause
// is fixed, an operator re-drives it and it is applied (issue 12, case 9: it used to
// block its partition forever).
func TestPoisonCommandIsParkedAndItsPartitionMovesOn(t *testing.T) {
	t.Parallel()
	b, in, conn, ctx, _ := startPoisonable(t, 3)
	cause := fmt.Errorf("load poison: %w: a commit this build cannot read", eventstore.ErrCorrupt)
	b.broken.Store(&cause)
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	poison := domain.Command{Type: domain.CommandOptOut, CommandID: "poison-1", ClientID: "poison", At: at}
	healthy := domain.Command{Type: domain.CommandOptOut, CommandID: "healthy-1", ClientID: "healthy", At: at}

	out, err := client.PublishAndWait(ctx, conn, poison)
	if err != nil || out.Status != client.OutcomeRejected || out.Code != domain.RejectParked {
		t.Fatalf("poison command: got %+v, %v; want rejected with code %s", out, err, domain.RejectParked)
	}
	if !strings.Contains(out.Error, "3 times") || !strings.Contains(out.Error, "cannot read") {
		t.Errorf("parked error %q: want the count and the cause", out.Error)
	}
	if got, err := client.PublishAndWait(ctx, conn, healthy); err != nil || got.Status != client.OutcomeApplied {
		t.Fatalf("the command behind it: got %+v, %v; want applied", got, err)
	}
	if s := in.Stuck(); len(s) != 0 {
		t.Errorf("Stuck() = %v after parking, want none", s)
	}
	js, err := client.JetStreamOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	parked, err := client.ListParked(ctx, js)
	if err != nil || len(parked) != 1 {
		t.Fatalf("ListParked = %+v, %v; want the one command", parked, err)
	}
	if p := parked[0]; p.CommandID != "poison-1" || p.Client != "poison" || p.Failures != 3 || !strings.Contains(p.Error, "cannot read") || p.Bytes == 0 {
		t.Errorf("parked %+v: want poison-1 of client poison, 3 failures, its error and payload", p)
	}
	var codes []domain.RejectionCode
	err = b.Rejections(ctx, eventstore.Query{Client: "poison"}, func(_ uint64, r eventstore.Rejection) error {
		codes = append(codes, r.Code)
		return nil
	})
	if err != nil || len(codes) != 1 || codes[0] != domain.RejectParked {
		t.Errorf("recorded rejections %v, %v; want one %s", codes, err, domain.RejectParked)
	}

	// Fixed: re-drive it.
	b.broken.Store(nil)
	again, err := client.Redrive(ctx, conn, parked[0].Seq)
	if err != nil || again.Status != client.OutcomeApplied || again.CommandID != "poison-1" {
		t.Fatalf("Redrive = %+v, %v; want poison-1 applied", again, err)
	}
	if left, err := client.ListParked(ctx, js); err != nil || len(left) != 0 {
		t.Errorf("ListParked after the re-drive = %+v, %v; want none", left, err)
	}
}

// TestOutageIsWaitedOutAndShownAsStuck: a failure that is NATS being unavailable is
// not the command's fault: it is never parked, but the partition is reported stuck
// until it moves again.
func TestOutageIsWaitedOutAndShownAsStuck(t *testing.T) {
	t.Parallel()
	b, in, conn, ctx, reg := startPoisonable(t, 2)
	cause := fmt.Errorf("load poison: %w: no responders", eventstore.ErrUnavailable)
	b.broken.Store(&cause)
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "wait-1", ClientID: "poison", At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	res := make(chan client.Outcome, 1)
	go func() {
		out, err := client.PublishAndWait(ctx, conn, cmd)
		if err != nil {
			out.Error = err.Error()
		}
		res <- out
	}()
	var stuck []intake.Stuck
	for ctx.Err() == nil {
		if stuck = in.Stuck(); len(stuck) > 0 && stuck[0].Failures >= 4 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(stuck) != 1 || stuck[0].Partition != 0 || !strings.Contains(stuck[0].String(), "no responders") {
		t.Fatalf("Stuck() = %v; want partition 0 with its error", stuck)
	}
	if got := headFailures(t, reg); got < 4 {
		t.Errorf("studyd_partition_head_failures{partition=\"0\"} = %v while stuck, want at least 4", got)
	}
	b.broken.Store(nil)
	if out := <-res; out.Status != client.OutcomeApplied {
		t.Fatalf("after the outage: got %+v; want applied, never parked", out)
	}
	if s := in.Stuck(); len(s) != 0 {
		t.Errorf("Stuck() = %v after it moved, want none", s)
	}
	if got := headFailures(t, reg); got != 0 {
		t.Errorf("studyd_partition_head_failures{partition=\"0\"} = %v after it moved, want 0", got)
	}
}

// headFailures reads partition 0's studyd_partition_head_failures from reg.
func headFailures(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "studyd_partition_head_failures" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "0" {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatal(`no studyd_partition_head_failures{partition="0"}`)
	return 0
}
