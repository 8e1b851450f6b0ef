package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// TestRawAtomicPublish checks the atomic-batch baseline against a real server: every
// message is stored, a short last batch included, and a stream that does not allow
// atomic batches makes it fail rather than count messages that were never written.
func TestRawAtomicPublish(t *testing.T) {
	ctx := t.Context()
	ps, err := samplePayloads(ctx, 300, 100, 30, 7)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		allow   bool
		n       int
		wantErr string
	}{
		{name: "whole and short batches", allow: true, n: 1250},
		{name: "atomic publish not allowed", allow: false, n: 10, wantErr: "batch rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := startNode(ctx, nodeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.stop()
			// studyd's own stream may allow atomic batches or not; the case says which.
			if err := enableAtomicPublish(ctx, n.js); err != nil {
				t.Fatal(err)
			}
			if !tt.allow {
				st, err := n.js.Stream(ctx, eventlog.EventsStream)
				if err != nil {
					t.Fatal(err)
				}
				cfg := st.CachedInfo().Config
				cfg.AllowAtomicPublish = false
				if _, err := n.js.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			rate, err := rawAtomicPublish(ctx, n.nc, ps, tt.n, atomicBatch, atomicInFlight)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || rate <= 0 {
				t.Fatalf("got rate %g, error %v; want a positive rate", rate, err)
			}
			_, msgs, err := n.lastSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if msgs != uint64(tt.n) {
				t.Errorf("got %d messages stored, want %d", msgs, tt.n)
			}
		})
	}
}

func TestCheckBatchAck(t *testing.T) {
	tests := []struct {
		name    string
		ack     string
		wantErr string
	}{
		{name: "committed", ack: `{"stream":"STUDYD_EVENTS","seq":500,"batch":"b1","count":500}`},
		{name: "api error", ack: `{"error":{"code":400,"err_code":10174,"description":"atomic publish is disabled"}}`, wantErr: "atomic publish is disabled"},
		{name: "other batch", ack: `{"stream":"STUDYD_EVENTS","seq":500,"batch":"b2","count":500}`, wantErr: "want stream"},
		{name: "short count", ack: `{"stream":"STUDYD_EVENTS","seq":499,"batch":"b1","count":499}`, wantErr: "count 500"},
		{name: "other stream", ack: `{"stream":"OTHER","seq":500,"batch":"b1","count":500}`, wantErr: "want stream"},
		{name: "not JSON", ack: `+OK`, wantErr: "commit acknowledgement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBatchAck([]byte(tt.ack), "b1", 500)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzCheckBatchAck: whatever the server answers, checkBatchAck does not panic, and it
// accepts only an acknowledgement of this batch, whole, on the events stream.
func FuzzCheckBatchAck(f *testing.F) {
	f.Add([]byte(`{"stream":"STUDYD_EVENTS","seq":500,"batch":"b1","count":500}`))
	f.Add([]byte(`{"error":{"code":400,"err_code":10174,"description":"x"}}`))
	f.Add([]byte(`{"stream":"STUDYD_EVENTS","batch":"b1","count":500,"error":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkBatchAck(data, "b1", 500) != nil {
			return
		}
		var ack batchAck
		if err := json.Unmarshal(data, &ack); err != nil {
			t.Fatalf("accepted %q, which does not decode: %v", data, err)
		}
		if ack.Error != nil || ack.Batch != "b1" || ack.Count != 500 || ack.Stream != "STUDYD_EVENTS" {
			t.Fatalf("accepted %q: %+v", data, ack)
		}
	})
}
