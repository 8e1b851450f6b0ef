package query

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// publishCommits appends n commits as raw publishes, each with a runner uptake report
// and an enrollment in one of pref-0..pref-2, and returns the last sequence.
func publishCommits(t testing.TB, js jetstream.JetStream, n int) uint64 {
	t.Helper()
	at := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC)
	var last uint64
	for i := range n {
		cl := domain.ClientID(fmt.Sprintf("client-%d", i))
		slug := fmt.Sprintf("pref-%d", i%3)
		c := eventstore.Commit{CommitID: fmt.Sprintf("commit-%d", i), CommandID: fmt.Sprintf("cmd-%d", i),
			CommandType: domain.CommandRecipeRun, Client: cl, At: at.Add(time.Duration(i) * time.Minute),
			State: domain.ClientState{Client: cl},
			Events: []domain.Event{
				{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerStatuses[i%len(domain.RunnerStatuses)]},
				{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: slug, Slug: slug, Branch: "control",
					From: domain.StateNone, To: domain.StateEnrolled, ExperimentType: domain.ExperimentTypeExp},
			}}
		b, err := eventstore.EncodeCommit(c)
		if err != nil {
			t.Fatalf("encode commit: %v", err)
		}
		ack, err := js.Publish(context.Background(), "studyd.evt."+string(cl), b)
		if err != nil {
			t.Fatalf("publish commit: %v", err)
		}
		last = ack.Sequence
	}
	return last
}

// runProjector runs a projector with flush interval every until the returned stop.
func runProjector(js jetstream.JetStream, every time.Duration) (stop func()) {
	p := views.NewProjector(js, views.ProjectorConfig{FlushInterval: every, LeaseTTL: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() { cancel(); <-done }
}
