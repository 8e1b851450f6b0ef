package eventlog_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/eventstore/storetest"
)

func testCommitKey(t testing.TB) *audit.CommitKey {
	t.Helper()
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.ParseCommitKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestStoreConformanceWithCommitKey: authenticating changes nothing the contract says.
func TestStoreConformanceWithCommitKey(t *testing.T) {
	k := testCommitKey(t)
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		_, _, js := natstest.Start(t)
		if _, err := eventlog.EnsureEventsStream(t.Context(), js, 1); err != nil {
			t.Fatalf("EnsureEventsStream: %v", err)
		}
		return eventlog.NewStore(js, eventlog.WithCommitKey(k))
	})
}

// TestForgedCommitNeverDecides: a commit published on a client's subject by someone
// without the commit key — well formed, naming the client's last commit as its
// predecessor, enrolling the client in a study it never joined — is not the state the
// client's next command is decided on, with a cold or a warm cache.
func TestForgedCommitNeverDecides(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cache int
	}{{"cold cache", -1}, {"warm cache", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, js := natstest.Start(t)
			ctx := t.Context()
			if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
				t.Fatal(err)
			}
			k := testCommitKey(t)
			store := eventlog.NewStore(js, eventlog.WithCommitKey(k))
			h := app.NewHandler(store, app.Config{CacheSize: tt.cache})
			at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			first, err := h.Handle(ctx, domain.Command{Type: domain.CommandOptOut, CommandID: "c1", ClientID: "vic", At: at}, app.Source{Seq: 1})
			if err != nil {
				t.Fatal(err)
			}

			forgedStudy := domain.StudyRef{Object: domain.PreferenceStudy, Key: "never-joined"}
			forged := first.Record.Commit
			forged.CommitID, forged.CommandID, forged.PrevHash = "forged", "forged", first.Record.Hash
			forged.Events = nil
			forged.State = forged.State.With(domain.Enrollment{Object: forgedStudy.Object, Key: forgedStudy.Key, Slug: forgedStudy.Key,
				Action: "preference-experiment", State: domain.StateEnrolled, Branch: "treatment", EnrolledAt: at})
			publishForged(t, js, k, forged)

			loaded, err := store.Load(ctx, "vic")
			if err != nil || loaded.Position != first.Record.Position {
				t.Fatalf("Load = seq %d, %v; want the authentic commit at %d", loaded.Position, err, first.Record.Position)
			}
			// On the forged state this would unenroll the client; on studyd's it is illegal.
			_, err = h.Handle(ctx, domain.Command{Type: domain.CommandUnenroll, CommandID: "c2", ClientID: "vic", At: at.Add(time.Hour),
				Study: &forgedStudy, Reason: domain.ReasonUnknown}, app.Source{Seq: 2})
			if !errors.Is(err, domain.ErrIllegalTransition) {
				t.Errorf("unenroll from the forged study: got %v, want ErrIllegalTransition (the client never joined)", err)
			}
			next, err := h.Handle(ctx, domain.Command{Type: domain.CommandOptOut, CommandID: "c3", ClientID: "vic", At: at.Add(2 * time.Hour)}, app.Source{Seq: 3})
			if err != nil {
				t.Fatalf("next command after the forgery: %v", err)
			}
			if next.Record.Commit.PrevHash != first.Record.Hash {
				t.Errorf("next commit names %s as predecessor, want the authentic %s", next.Record.Commit.PrevHash, first.Record.Hash)
			}
			if _, ok := next.Record.Commit.State.Find(forgedStudy); ok {
				t.Errorf("next commit's state holds the forged enrollment")
			}
			// And the appended commit is the client's last again: Load is one get.
			if l, err := store.Load(ctx, "vic"); err != nil || l.Position != next.Record.Position {
				t.Errorf("Load after = %d, %v; want %d", l.Position, err, next.Record.Position)
			}
		})
	}
}

// publishForged writes c on its client's subject with full rights but without the
// commit key (what an admin, or studyd tricked into publishing for someone, could do):
// its authentication code names k and is wrong.
func publishForged(t *testing.T, js jetstream.JetStream, k *audit.CommitKey, c eventstore.Commit) {
	t.Helper()
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: eventlog.EventSubject(c.Client), Data: raw,
		Header: nats.Header{audit.HeaderMAC: []string{"v1 " + k.ID() + " AAAA"}}}); err != nil {
		t.Fatal(err)
	}
}
