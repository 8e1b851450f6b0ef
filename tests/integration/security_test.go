package integration

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// securityConfig gives one account two users: the service, which may do anything, and a
// command publisher, which may only publish commands and receive the acks on its inbox.
const securityConfig = `
accounts {
  STUDYD {
    jetstream: enabled
    users: [
      { user: service, password: "service-secret" }
      { user: publisher, password: "publisher-secret",
        permissions: {
          publish:   { allow: ["studyd.cmd.>"] }
          subscribe: { allow: ["_INBOX.>"] }
        }
      }
    ]
  }
}
`

// TestPublisherCannotTouchEvents checks the permission model DESIGN.md relies on: a
// client allowed to publish commands cannot forge events or rejections, and cannot
// delete or purge the event log through the JetStream API.
func TestPublisherCannotTouchEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startSingle(ctx, t, nodeSpec{name: "secure", config: securityConfig})

	svc := connect(t, n.URL(), nats.UserInfo("service", "service-secret"))
	sjs := newJS(t, svc)
	events := createStreamRetry(ctx, t, sjs, jetstream.StreamConfig{
		Name: "STUDYD_EVENTS", Subjects: []string{"studyd.evt.>", "studyd.rej.>"},
		Storage: jetstream.FileStorage, AllowDirect: true,
		// No DenyDelete/DenyPurge here: only the permissions stand between the
		// publisher and the log, so that is what this test measures.
	})
	createStreamRetry(ctx, t, sjs, jetstream.StreamConfig{
		Name: "STUDYD_CMDS", Subjects: []string{"studyd.cmd.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
	})
	for _, subj := range []string{"studyd.evt.c1", "studyd.evt.c2", "studyd.rej.c1"} {
		if _, err := sjs.Publish(ctx, subj, []byte("genuine")); err != nil {
			t.Fatalf("service publish %s: %v", subj, err)
		}
	}

	asyncErrs := make(chan error, 16)
	pub := connect(t, n.URL(), nats.UserInfo("publisher", "publisher-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))
	pjs := newJS(t, pub)

	// The control: what the publisher is allowed works, so the denials below are not
	// a broken connection.
	if _, err := pjs.Publish(ctx, "studyd.cmd.c1", []byte("command")); err != nil {
		t.Fatalf("publisher publish command: got %v, want a PubAck", err)
	}

	denied := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"core publish event", func(context.Context) error {
			if err := pub.Publish("studyd.evt.c1", []byte("forged")); err != nil {
				return err
			}
			return pub.Flush()
		}},
		{"jetstream publish event", func(ctx context.Context) error {
			_, err := pjs.Publish(ctx, "studyd.evt.c3", []byte("forged"))
			return err
		}},
		{"jetstream publish rejection", func(ctx context.Context) error {
			_, err := pjs.Publish(ctx, "studyd.rej.c1", []byte("forged"))
			return err
		}},
		{"delete stream", func(ctx context.Context) error { return pjs.DeleteStream(ctx, "STUDYD_EVENTS") }},
		{"purge stream", func(ctx context.Context) error {
			_, err := pub.RequestWithContext(ctx, "$JS.API.STREAM.PURGE.STUDYD_EVENTS", nil)
			return err
		}},
		{"delete message", func(ctx context.Context) error {
			_, err := pub.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE.STUDYD_EVENTS", []byte(`{"seq":1}`))
			return err
		}},
		{"update stream", func(ctx context.Context) error {
			_, err := pjs.UpdateStream(ctx, jetstream.StreamConfig{Name: "STUDYD_EVENTS", Subjects: []string{"studyd.evt.>", "studyd.rej.>", "forged.>"}})
			return err
		}},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			drain(asyncErrs)
			octx, cancel := context.WithTimeout(ctx, time.Second)
			opErr := tc.do(octx)
			cancel()
			select {
			case err := <-asyncErrs:
				if !errPermission(err) {
					t.Errorf("got async error %v, want a permissions violation", err)
				}
				t.Logf("denied: %v (operation returned %v)", err, opErr)
			case <-time.After(3 * time.Second):
				t.Errorf("got no permissions violation (operation returned %v), want one", opErr)
			}
		})
	}

	info, err := events.Info(ctx)
	if err != nil {
		t.Fatalf("events stream after the attempts: %v", err)
	}
	if got := info.State.Msgs; got != 3 {
		t.Errorf("got %d messages in STUDYD_EVENTS, want 3 (only the service's)", got)
	}
	if got := len(info.Config.Subjects); got != 2 {
		t.Errorf("got %d subjects on STUDYD_EVENTS, want 2 (config unchanged)", got)
	}
	cmds, err := sjs.Stream(ctx, "STUDYD_CMDS")
	if err != nil {
		t.Fatal(err)
	}
	if ci, err := cmds.Info(ctx); err != nil || ci.State.Msgs != 1 {
		t.Errorf("got STUDYD_CMDS %v messages (err %v), want 1", ci.State.Msgs, err)
	}
}

// drain empties ch.
func drain(ch chan error) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
