package audit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/audit"
)

// sliceLog is a Log over entries in memory: audit reads a log only through the
// interface, so it needs no NATS to be tested.
type sliceLog []audit.Entry

func (l sliceLog) Bounds(_ context.Context, r audit.Range) (uint64, uint64, bool, error) {
	if len(l) == 0 {
		return 0, 0, false, nil
	}
	first, last := max(r.From, l[0].Seq), l[len(l)-1].Seq
	if r.To != 0 && r.To < last {
		last = r.To
	}
	return first, last, first <= last, nil
}

func (l sliceLog) Replay(_ context.Context, r audit.Range, fn func(audit.Entry) error) error {
	for _, e := range l {
		if e.Seq < r.From || (r.To != 0 && e.Seq > r.To) {
			continue
		}
		if len(r.Subjects) > 0 && !matchesAny(e.Subject, r.Subjects) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func matchesAny(subject string, filters []string) bool {
	for _, f := range filters {
		if f == subject || (strings.HasSuffix(f, ">") && strings.HasPrefix(subject, strings.TrimSuffix(f, ">"))) {
			return true
		}
	}
	return false
}

func TestVerifyReadsALog(t *testing.T) {
	l := fleet(t)
	log := sliceLog(l.Entries)
	r, err := audit.Verify(context.Background(), log, audit.Range{}, audit.VerifyOptions{Complete: true, Anchored: true}, nil)
	if err != nil || r.Err() != nil {
		t.Fatalf("Verify of a clean log: %v, %v", err, r.Err())
	}
	if r.Messages != uint64(len(l.Entries)) {
		t.Errorf("verified %d messages, want %d", r.Messages, len(l.Entries))
	}
	var seqs []uint64
	err = audit.ReplayDecoded(context.Background(), log, audit.Range{}, 3, func(d audit.Decoded) error {
		seqs = append(seqs, d.Seq)
		if len(seqs) == 5 {
			return errors.New("enough")
		}
		return nil
	})
	if err == nil || err.Error() != "enough" || len(seqs) != 5 || seqs[0] != l.Entries[0].Seq || seqs[4] != l.Entries[4].Seq {
		t.Errorf("ReplayDecoded stopped with %v after %v, want fn's error after the first 5 in order", err, seqs)
	}
}

func TestCoverage(t *testing.T) {
	for _, tt := range []struct {
		name               string
		r                  audit.Range
		complete, anchored bool
	}{
		{"everything", audit.Range{}, true, true},
		{"from the first sequence", audit.Range{From: 1}, true, true},
		{"one client from the start", audit.Range{Subjects: []string{audit.CommitPrefix + "c1"}}, false, true},
		{"every commit", audit.Range{Subjects: []string{audit.CommitPrefix + ">"}}, false, false},
		{"rejections", audit.Range{Subjects: []string{audit.RejectionPrefix + "c1"}}, false, false},
		{"a window", audit.Range{From: 10}, false, false},
		{"up to a sequence", audit.Range{To: 10}, true, true},
	} {
		complete, anchored := audit.Coverage(tt.r, 1)
		if complete != tt.complete || anchored != tt.anchored {
			t.Errorf("%s: Coverage = %t, %t; want %t, %t", tt.name, complete, anchored, tt.complete, tt.anchored)
		}
	}
}

// TestReplayLeanRecordsAreWhole: a lean replay reuses its events' and enrollments'
// memory batch after batch (ReplayLean), a LeanDecoder entry after entry; every record
// fn sees must still be exactly the lean decode of its entry, in order, however the
// workers run ahead.
func TestReplayLeanRecordsAreWhole(t *testing.T) {
	l := fleet(t)
	// The reader runs at most 4×workers jobs of 64 entries (and the one it fills) ahead
	// of fn, so with one or two workers the log's later jobs are reused ones.
	if len(l.Entries) < 12*64 {
		t.Fatalf("the fleet log has %d entries: too few to reuse jobs", len(l.Entries))
	}
	for _, workers := range []int{1, 2} {
		n := 0
		err := audit.ReplayLean(context.Background(), sliceLog(l.Entries), audit.Range{}, workers, func(d audit.Decoded) error {
			e := l.Entries[n]
			n++
			want := audit.DecodeLean(e)
			if d.Seq != e.Seq || !reflect.DeepEqual(d.Record, want.Record) || d.Sum != want.Sum || (d.Err == nil) != (want.Err == nil) {
				return fmt.Errorf("entry %d (seq %d) is not its lean decode: %s", n-1, e.Seq, cmp.Diff(want.Record, d.Record))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%d workers: %v", workers, err)
		}
		if n != len(l.Entries) {
			t.Fatalf("%d workers: replayed %d entries, want %d", workers, n, len(l.Entries))
		}
	}
	var lean audit.LeanDecoder
	for i, e := range l.Entries {
		got, want := lean.Decode(e), audit.DecodeLean(e)
		if !reflect.DeepEqual(got.Record, want.Record) || got.Sum != want.Sum || (got.Err == nil) != (want.Err == nil) {
			t.Fatalf("LeanDecoder: entry %d is not its lean decode: %s", i, cmp.Diff(want.Record, got.Record))
		}
	}
}
