package app_test

import (
	"context"
	"errors"
	"fmt"
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
