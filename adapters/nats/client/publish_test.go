package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/simulate"
)

// plainCommandsStream creates a STUDYD_CMDS like studyd's, without its partitioning, so
// the test can read back exactly what was published.
func plainCommandsStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: client.CommandsStream, Subjects: []string{"studyd.cmd.>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return s
}

// fleetCommands returns a small simulation's commands.
func fleetCommands(t *testing.T) []domain.Command {
	t.Helper()
	f, err := simulate.New(simulate.Config{Clients: 40, Days: 2, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.Command
	if err := f.Each(func(c domain.Command) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// iter yields cmds one by one.
func iter(cmds []domain.Command) func() (domain.Command, bool) {
	i := 0
	return func() (domain.Command, bool) {
		if i == len(cmds) {
			return domain.Command{}, false
		}
		i++
		return cmds[i-1], true
	}
}

func TestPublishCommands(t *testing.T) {
	tests := []struct {
		name        string
		json        bool
		contentType string
	}{
		{"msgpack", false, ""},
		{"json", true, client.ContentTypeJSON},
	}
	cmds := fleetCommands(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			_, nc, js := natstest.Start(t)
			stream := plainCommandsStream(t, js)
			stats, err := client.PublishCommands(ctx, nc, iter(cmds), client.PublishOptions{JSON: tt.json, InFlight: 16})
			if err != nil {
				t.Fatalf("PublishCommands: %v", err)
			}
			if stats.Sent != len(cmds) || stats.Acked != len(cmds) || stats.Duplicates != 0 {
				t.Errorf("got sent %d, acked %d, duplicates %d; want %d, %d, 0", stats.Sent, stats.Acked, stats.Duplicates, len(cmds), len(cmds))
			}
			info, err := stream.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != uint64(len(cmds)) {
				t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, len(cmds))
			}
			// The first message decodes back to the first command, by its content type.
			msg, err := stream.GetMsg(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Header.Get(client.HeaderContentType); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got, want := msg.Header.Get("Nats-Msg-Id"), client.CommandMsgID(cmds[0]); got != want {
				t.Errorf("Nats-Msg-Id %q, want %q (client-scoped, with the body's digest)", got, want)
			}
			if msg.Subject != client.CommandSubject(cmds[0].ClientID) {
				t.Errorf("subject %q, want %q", msg.Subject, client.CommandSubject(cmds[0].ClientID))
			}
			got, err := client.DecodeCommand(tt.contentType, msg.Data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.CommandID != cmds[0].CommandID || !got.At.Equal(cmds[0].At) || len(got.Recipes) != len(cmds[0].Recipes) {
				t.Errorf("decoded %+v, want %+v", got, cmds[0])
			}

			// Publishing again is absorbed by the stream's duplicate window.
			again, err := client.PublishCommands(ctx, nc, iter(cmds), client.PublishOptions{JSON: tt.json})
			if err != nil {
				t.Fatalf("PublishCommands again: %v", err)
			}
			if again.Duplicates != len(cmds) {
				t.Errorf("second publish: got %d duplicates, want %d", again.Duplicates, len(cmds))
			}
			if info, _ := stream.Info(ctx); info.State.Msgs != uint64(len(cmds)) {
				t.Errorf("after the second publish the stream holds %d messages, want %d", info.State.Msgs, len(cmds))
			}
		})
	}
}

func TestPublishCommandsWithoutStream(t *testing.T) {
	_, nc, _ := natstest.Start(t)
	cmds := fleetCommands(t)
	stats, err := client.PublishCommands(context.Background(), nc, iter(cmds), client.PublishOptions{})
	if !errors.Is(err, client.ErrNoCommandsStream) {
		t.Fatalf("got error %v, want ErrNoCommandsStream", err)
	}
	if stats.Sent != 0 {
		t.Errorf("sent %d commands, want none", stats.Sent)
	}
}

func TestPublishCommandsStopsWithContext(t *testing.T) {
	_, nc, js := natstest.Start(t)
	plainCommandsStream(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	cmds := fleetCommands(t)
	n := 0
	next := func() (domain.Command, bool) {
		if n == 10 {
			cancel()
		}
		n++
		return cmds[n%len(cmds)], true // endless
	}
	stats, err := client.PublishCommands(ctx, nc, next, client.PublishOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if stats.Sent < 10 || stats.Sent > 11 {
		t.Errorf("sent %d, want the 10 before the cancel", stats.Sent)
	}
}

// BenchmarkPublishCommands measures the load publisher against an in-process server
// with a file-backed work-queue stream: acked commands per second.
func BenchmarkPublishCommands(b *testing.B) {
	_, nc, js := natstest.Start(b)
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: client.CommandsStream, Subjects: []string{"studyd.cmd.>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	f, err := simulate.New(simulate.Config{Clients: 10_000, Days: 365, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	cmds := make([]domain.Command, b.N)
	for i := range cmds {
		cmds[i], _ = f.Next()
	}
	b.ResetTimer()
	stats, err := client.PublishCommands(context.Background(), nc, iter(cmds), client.PublishOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(stats.Rate(), "cmds/s")
	if info, _ := stream.Info(context.Background()); info.State.Msgs != uint64(b.N) {
		b.Fatalf("stream holds %d, want %d", info.State.Msgs, b.N)
	}
}
