package checkpoint_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/eventlog/eventlogtest"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

func TestWriteCheckpoint(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 10, 2)
	ctx := context.Background()
	pub, key := mustKey(t)
	cp1, err := checkpoint.Write(ctx, l.JS, key, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d audit.LogDigest
	for _, e := range l.Entries {
		d.AddEntry(e)
	}
	if cp1.Seq != d.Seq || cp1.Count != d.Count || cp1.Digest != d.Hex() || cp1.Stream != eventlog.EventsStream {
		t.Fatalf("checkpoint %+v, want seq %d count %d digest %s", cp1, d.Seq, d.Count, d.Hex())
	}
	if err := cp1.VerifySignature(pub); err != nil {
		t.Fatal(err)
	}
	// Nothing new: the same checkpoint, nothing written.
	again, err := checkpoint.Write(ctx, l.JS, key, checkpoint.Options{})
	if err != nil || again != cp1 {
		t.Fatalf("second checkpoint with nothing new: got %+v, %v; want the first", again, err)
	}
	// Appended since: the next checkpoint continues the digest.
	if _, err := l.Store.Reject(ctx, eventstore.Rejection{Code: "malformed", Error: "x", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cp2, err := checkpoint.Write(ctx, l.JS, key, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := eventlogtest.ReplayAll(t, l.JS, eventlog.ReplayOptions{})
	d.AddEntry(all[len(all)-1])
	if cp2.Seq != cp1.Seq+1 || cp2.Digest != d.Hex() {
		t.Errorf("next checkpoint %+v, want seq %d digest %s", cp2, cp1.Seq+1, d.Hex())
	}
	cps, err := checkpoint.Read(ctx, l.JS, "", eventlog.EventsStream)
	if err != nil || len(cps) != 2 || cps[0] != cp1 || cps[1] != cp2 {
		t.Errorf("Read: got %+v, %v; want both", cps, err)
	}
	r, err := checkpoint.VerifyLog(ctx, l.JS, checkpoint.VerifyConfig{PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Err() != nil || r.CheckpointsChecked != 2 || !r.SignaturesChecked {
		t.Errorf("verify: %v, %d checkpoints checked (signatures %t); want no fault, 2, true", r.Err(), r.CheckpointsChecked, r.SignaturesChecked)
	}
}

// TestWriterRunsUntilCancelled: a Writer checkpoints the log on its own, and Run
// returns nil when its context ends.
func TestWriterRunsUntilCancelled(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 3, 1)
	_, key := mustKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := checkpoint.NewWriter(l.JS, key, checkpoint.WriterConfig{Every: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cps, err := checkpoint.Read(ctx, l.JS, "", eventlog.EventsStream)
		if err == nil && len(cps) > 0 && cps[len(cps)-1].Seq == l.LastSeq(t) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of seq %d after 10s: %+v, %v", l.LastSeq(t), cps, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestVerifyViewsOfLiveProjector: the fold of the log equals the views a real
// projector wrote, and a view edited behind its back is named.
func TestVerifyViewsOfLiveProjector(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 15, 3)
	ctx, cancel := context.WithCancel(context.Background())
	p := views.NewProjector(l.JS, views.ProjectorConfig{FlushInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	last := l.LastSeq(t)
	for p.Seq() < lastCommitSeq(l.Entries) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, err := checkpoint.VerifyLog(context.Background(), l.JS, checkpoint.VerifyConfig{Views: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Err() != nil || r.Views == nil || !r.Views.Equal() || r.Views.Keys == 0 {
		t.Fatalf("verify with views: %v, views %+v; want equal and no fault", r.Err(), r.Views)
	}
	if r.LastSeq != last {
		t.Errorf("verified to seq %d, want %d", r.LastSeq, last)
	}
	// Edit one study view in KV, keeping its seq stamp.
	kv, err := l.JS.KeyValue(context.Background(), client.StudiesBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("study keys: %v, %v", keys, err)
	}
	e, err := kv.Get(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var v projections.StudyView
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		t.Fatal(err)
	}
	v.Enrolled += 3
	b, _ := json.Marshal(v)
	if _, err := kv.Put(context.Background(), keys[0], b); err != nil {
		t.Fatal(err)
	}
	r, err = checkpoint.VerifyLog(context.Background(), l.JS, checkpoint.VerifyConfig{Views: true})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := r.Err().(*audit.Fault)
	if !ok || f.Kind != audit.FaultView || !strings.Contains(f.Detail, "study "+string(v.Object)+"/"+v.Key) || r.Views.Equal() {
		t.Errorf("after editing %s: got %v, want a view mismatch naming it", keys[0], r.Err())
	}
}

func lastCommitSeq(entries []audit.Entry) uint64 {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Kind() == audit.KindCommit {
			return entries[i].Seq
		}
	}
	return 0
}

// TestVerifyTamperedCopy proves each detection on a tampered copy of a real log: a
// stream created without the deny flags, filled with the original's messages with
// one edited, deleted, swapped or forged, verified against the original's signed
// checkpoints.
func TestVerifyTamperedCopy(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 15, 3)
	ctx := context.Background()
	pub, key := mustKey(t)
	if _, err := checkpoint.Write(ctx, l.JS, key, checkpoint.Options{}); err != nil {
		t.Fatal(err)
	}
	client, commits := l.Busiest(t)
	b, c := commits[1], commits[2] // consecutive commits of one client
	idx := func(e audit.Entry) int { return int(e.Seq - 1) }
	edit := func(t *testing.T, e audit.Entry, fn func(*eventstore.Commit)) []byte {
		r, err := e.Record()
		if err != nil {
			t.Fatal(err)
		}
		fn(&r.Commit)
		raw, err := eventstore.EncodeCommit(r.Commit)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name string
		// tamper returns the messages to publish, and a sequence to delete afterwards.
		tamper func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64)
		kind   audit.FaultKind
		seq    uint64 // of the first fault
		detail string
	}{
		{name: "untouched copy", tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) { return es, 0 }},
		{name: "edited body", kind: audit.FaultChain, seq: c.Seq, detail: "was edited",
			tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) {
				es[idx(b)].Data = edit(t, b, func(c *eventstore.Commit) { c.CorrelationID = "edited" })
				return es, 0
			}},
		{name: "deleted message", kind: audit.FaultChain, seq: c.Seq, detail: "removed",
			tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) { return es, b.Seq }},
		{name: "swapped commits", kind: audit.FaultChain, seq: b.Seq,
			tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) {
				es[idx(b)], es[idx(c)] = es[idx(c)], es[idx(b)]
				return es, 0
			}},
		{name: "inserted forged commit", kind: audit.FaultChain, seq: c.Seq + 1, detail: "was inserted",
			tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) {
				forged := audit.Entry{Subject: b.Subject, Data: edit(t, b, func(cm *eventstore.Commit) {
					cm.CommandID, cm.Events, cm.PrevHash = "forged", nil, eventstore.Hash(b.Data)
				})}
				return slices.Insert(es, idx(b)+1, forged), 0
			}},
		{name: "edited last message, only the checkpoint knows", kind: audit.FaultCheckpoint, seq: uint64(len(l.Entries)),
			tamper: func(t *testing.T, es []audit.Entry) ([]audit.Entry, uint64) {
				last := es[len(es)-1]
				if last.Kind() == audit.KindCommit {
					es[len(es)-1].Data = edit(t, last, func(c *eventstore.Commit) { c.CorrelationID = "edited" })
				} else {
					es[len(es)-1].Data = append(slices.Clone(last.Data[:len(last.Data)-1]), last.Data[len(last.Data)-1]^1)
				}
				return es, 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, js := natstest.Start(t)
			es, del := tt.tamper(t, slices.Clone(l.Entries))
			st := eventlogtest.CopyStream(t, js, "TAMPERED", es)
			if del != 0 {
				if err := st.DeleteMsg(ctx, del); err != nil {
					t.Fatal(err)
				}
			}
			copyCheckpoints(t, l.JS, js)
			r, err := checkpoint.VerifyLog(ctx, js, checkpoint.VerifyConfig{Replay: eventlog.ReplayOptions{Stream: "TAMPERED"},
				PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			if r.CheckpointsChecked != 1 || !r.SignaturesChecked {
				t.Errorf("checked %d checkpoints (signatures %t), want 1 (true)", r.CheckpointsChecked, r.SignaturesChecked)
			}
			if tt.kind == "" {
				if r.Err() != nil {
					t.Fatalf("untouched copy: got %v, want no fault", r.Err())
				}
				return
			}
			f, ok := r.Err().(*audit.Fault)
			if !ok {
				t.Fatalf("got %v, want a fault", r.Err())
			}
			if f.Kind != tt.kind || f.Seq != tt.seq || !strings.Contains(f.Detail, tt.detail) {
				t.Errorf("first fault %v: want %s at seq %d saying %q", f, tt.kind, tt.seq, tt.detail)
			}
			if tt.kind == audit.FaultChain && f.Client != client {
				t.Errorf("fault names client %s, want %s", f.Client, client)
			}
			if !slices.ContainsFunc(r.Faults, func(f audit.Fault) bool { return f.Kind == audit.FaultCheckpoint }) {
				t.Errorf("faults %v: want the signed checkpoint to disagree too", r.Faults)
			}
		})
	}
}

// TestVerifyFailsWhenTheViewsAreBehind: views equal to the log at their own sequence,
// but behind its last commit (a stopped projector), fail verify with "views at seq X
// of Y" (issue 12, case 9: verify said "views EQUAL" comparing with the projector's
// checkpoint only).
func TestVerifyFailsWhenTheViewsAreBehind(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 10, 2)
	ctx, cancel := context.WithCancel(context.Background())
	p := views.NewProjector(l.JS, views.ProjectorConfig{FlushInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); p.Seq() < lastCommitSeq(l.Entries); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("projector at %d, want %d", p.Seq(), lastCommitSeq(l.Entries))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reflected := p.Seq()
	// The projector is stopped; the log moves on.
	h := app.NewHandler(l.Store, app.Config{})
	res, err := h.Handle(context.Background(), domain.Command{Type: domain.CommandOptOut, CommandID: "late-1", ClientID: "late-client",
		At: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, app.Source{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := checkpoint.VerifyLog(context.Background(), l.JS, checkpoint.VerifyConfig{Views: true, ViewsWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Views == nil || !r.Views.Behind() || r.Views.Head != res.Record.Position || r.Views.Reflects != reflected {
		t.Fatalf("views %+v: want behind, reflecting %d of %d", r.Views, reflected, res.Record.Position)
	}
	f, ok := r.Err().(*audit.Fault)
	if !ok || f.Kind != audit.FaultViewsBehind || f.Seq != reflected || f.Related != res.Record.Position {
		t.Errorf("verify: %v; want a %s fault at seq %d of %d", r.Err(), audit.FaultViewsBehind, reflected, res.Record.Position)
	}
}
