package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// decodeStub stands for the wire codec: "bad" is malformed, content type "x/y" is not
// read, anything else is an opt-out of client c1 (or of the client the body names).
func decodeStub(contentType string, body []byte) (domain.Command, error) {
	switch {
	case contentType == "x/y":
		return domain.Command{}, fmt.Errorf("%w: %q", domain.ErrUnsupportedContent, contentType)
	case string(body) == "bad":
		return domain.Command{}, fmt.Errorf("%w: not a command", domain.ErrMalformed)
	}
	client := domain.ClientID("c1")
	if len(body) > 0 && len(body) < 64 {
		client = domain.ClientID(body)
	}
	return domain.Command{Type: domain.CommandOptOut, CommandID: "k1", ClientID: client, At: t0}, nil
}

func TestAdmitRefusesBeforeDeciding(t *testing.T) {
	big := []byte(strings.Repeat("x", domain.MaxCommandPayload+1))
	for _, tt := range []struct {
		name string
		in   app.Incoming
		code domain.RejectionCode // "" = admitted
	}{
		{"fine on its subject", app.Incoming{Client: "c1", Payload: []byte("c1")}, ""},
		{"fine on submit", app.Incoming{Payload: []byte("c1")}, ""},
		{"oversize", app.Incoming{Client: "c1", Payload: big}, domain.RejectOversize},
		{"malformed", app.Incoming{Client: "c1", Payload: []byte("bad")}, domain.RejectMalformed},
		{"unsupported", app.Incoming{Client: "c1", ContentType: "x/y", Payload: []byte("c1")}, domain.RejectUnsupported},
		{"another client's subject", app.Incoming{Client: "c2", Payload: []byte("c1")}, domain.RejectSubjectMismatch},
		{"unroutable client on submit", app.Incoming{Payload: []byte("not a token!")}, domain.RejectInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.Admit(tt.in, decodeStub)
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("Admit: %v, want admitted", err)
			case tt.code == "":
			case !domain.IsRejection(err) || domain.ClassifyRejection(err) != tt.code:
				t.Fatalf("Admit: %v (rejection %t, code %s), want a %s rejection", err, domain.IsRejection(err), domain.ClassifyRejection(err), tt.code)
			}
		})
	}
	if domain.IsRejection(eventstore.ErrUnavailable) || domain.IsRejection(errors.New("boom")) {
		t.Error("IsRejection holds for a transient failure")
	}
}

func TestRejectRecordsTheRefusal(t *testing.T) {
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ctx := context.Background()
	in := app.Incoming{Subject: "studyd.cmd.c1", Client: "c1", ContentType: "x/y", Payload: []byte("body"), Seq: 7}
	cmd, err := app.Admit(in, decodeStub)
	r, pos, rerr := h.Reject(ctx, in, cmd, err)
	if rerr != nil || pos == 0 {
		t.Fatalf("Reject = %d, %v", pos, rerr)
	}
	if r.Client != "c1" || r.Code != domain.RejectUnsupported || r.Subject != in.Subject || r.StreamSeq != 7 ||
		string(r.Payload) != "body" || r.Error != err.Error() || r.At.IsZero() {
		t.Errorf("rejection = %+v", r)
	}
	// A client id that is no subject token is recorded as no client.
	in = app.Incoming{Subject: "studyd.submit", Payload: []byte("not a token!")}
	cmd, err = app.Admit(in, decodeStub)
	if r, _, rerr = h.Reject(ctx, in, cmd, err); rerr != nil || r.Client != "" || r.Code != domain.RejectInvalid {
		t.Errorf("rejection = %+v, %v; want no client, invalid", r, rerr)
	}
	n := 0
	_ = store.Rejections(ctx, eventstore.Query{}, func(uint64, eventstore.Rejection) error { n++; return nil })
	if n != 2 {
		t.Errorf("store holds %d rejections, want 2", n)
	}
}

// failingRefusals is a refusal index that cannot be written to.
type failingRefusals struct{ app.RefusalIndex }

func (failingRefusals) RememberRefusal(context.Context, domain.ClientID, string, uint64) error {
	return eventstore.ErrUnavailable
}

// bareStore is a store without indexes: only eventstore.Store's methods.
type bareStore struct{ eventstore.Store }

// refuse records the illegal_transition refusal of client's commandID.
func refuse(t *testing.T, h *app.Handler, client domain.ClientID, commandID string) uint64 {
	t.Helper()
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: commandID, ClientID: client, At: t0}
	_, pos, err := h.Reject(context.Background(), app.Incoming{Subject: "studyd.submit"}, cmd, fmt.Errorf("%w: test", domain.ErrIllegalTransition))
	if err != nil {
		t.Fatalf("Reject(%s/%s): %v", client, commandID, err)
	}
	return pos
}

func TestRejectedFindsTheLatestRefusal(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(*eventstore.MemoryStore) eventstore.Store
	}{
		{"with the index", func(m *eventstore.MemoryStore) eventstore.Store { return m }},
		{"without an index: a scan", func(m *eventstore.MemoryStore) eventstore.Store { return bareStore{m} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := app.NewHandler(tt.store(eventstore.NewMemoryStore()), app.Config{})
			refuse(t, h, "c1", "x")
			refuse(t, h, "c2", "x")
			latest := refuse(t, h, "c1", "x")
			refuse(t, h, "c1", "y")
			r, pos, ok, err := h.Rejected(context.Background(), "c1", "x")
			if err != nil || !ok || pos != latest || r.Client != "c1" || r.CommandID != "x" {
				t.Errorf("got Rejected(c1, x) = %s/%s at %d (found %t, %v), want c1/x at %d", r.Client, r.CommandID, pos, ok, err, latest)
			}
			if _, _, ok, err := h.Rejected(context.Background(), "c1", "z"); ok || err != nil {
				t.Errorf("got Rejected(c1, z) found %t, %v; want not found", ok, err)
			}
		})
	}
}

// A refusal that could not be indexed is recorded all the same: the command is
// answered, and the failure logged.
func TestRejectSurvivesAnIndexThatFails(t *testing.T) {
	var logged bytes.Buffer
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{Refusals: failingRefusals{store}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	pos := refuse(t, h, "c1", "x")
	if _, err := store.Rejection(context.Background(), pos); err != nil {
		t.Fatalf("the refusal at %d is not recorded: %v", pos, err)
	}
	if !strings.Contains(logged.String(), "not indexed") || !strings.Contains(logged.String(), "command_id=x") {
		t.Errorf("got log %q, want the failed index write reported", logged.String())
	}
	if _, _, ok, err := h.Rejected(context.Background(), "c1", "x"); ok || err != nil {
		t.Errorf("got Rejected(c1, x) found %t, %v; want not found (the caller records it anew)", ok, err)
	}
}

// An index entry that names anything but this command's refusal (another command's,
// a commit, nothing) is no answer: a log restored without its index, say.
func TestRejectedNeverAnswersWithAnotherRecord(t *testing.T) {
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ctx := context.Background()
	other := refuse(t, h, "c1", "other")
	elsewhere := refuse(t, h, "c2", "x")
	res, err := h.Handle(ctx, domain.Command{Type: domain.CommandOptOut, CommandID: "applied", ClientID: "c1", At: t0}, app.Source{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []uint64{other, elsewhere, res.Record.Position, res.Record.Position + 100} {
		if err := store.RememberRefusal(ctx, "c1", "x", pos); err != nil {
			t.Fatal(err)
		}
		if r, got, ok, err := h.Rejected(ctx, "c1", "x"); ok || err != nil {
			t.Errorf("index at %d: got Rejected(c1, x) = %s/%s at %d (found %t, %v), want not found", pos, r.Client, r.CommandID, got, ok, err)
		}
	}
}

// A command refused by its decision, then sent under the same id with a body refused
// before any decision, then sent again as it was: the resend is answered with its own
// first refusal. Only decision refusals are indexed, so the refusal in between (of
// another body) does not hide it; it is also no use to a later lookup, which only ever
// asks for a decision refusal.
func TestRejectedKeepsTheDecisionRefusal(t *testing.T) {
	h := app.NewHandler(eventstore.NewMemoryStore(), app.Config{})
	ctx := context.Background()
	first := refuse(t, h, "c1", "x")
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "x", ClientID: "c1", At: t0}
	if _, _, err := h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, fmt.Errorf("%w: test", domain.ErrInvalid)); err != nil {
		t.Fatal(err)
	}
	r, pos, ok, err := h.Rejected(ctx, "c1", "x")
	if err != nil || !ok || pos != first || r.Code != domain.RejectIllegal {
		t.Errorf("got Rejected(c1, x) = %s at %d (found %t, %v), want %s at %d", r.Code, pos, ok, err, domain.RejectIllegal, first)
	}
}
