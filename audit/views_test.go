package audit_test

import (
	"strings"
	"testing"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/simulate"
)

// liveAt folds recs up to seq and renders the views as a projector that flushed
// exactly then would have stored them: every value stamped with seq.
func liveAt(recs []eventstore.Record, seq uint64) audit.LiveViews {
	u, s, tl, ro := projections.NewUptake(), projections.NewStudies(), projections.NewStudyTimeline(), projections.NewRollouts()
	for i := range recs {
		if recs[i].Position > seq {
			break
		}
		u.Apply(recs[i].Position, &recs[i].Commit)
		s.Apply(recs[i].Position, &recs[i].Commit)
		tl.Apply(recs[i].Position, &recs[i].Commit)
		ro.Apply(recs[i].Position, &recs[i].Commit)
	}
	live := audit.LiveViews{Checkpoint: seq}
	for _, v := range s.Views {
		c := *v
		c.Seq = seq
		live.Studies = append(live.Studies, c)
	}
	for k, n := range u.Counts {
		live.Uptake = append(live.Uptake, audit.LiveUptake{Key: k, Count: n, Seq: seq})
	}
	for _, b := range tl.Buckets {
		c := *b
		c.Seq = seq
		live.Timeline = append(live.Timeline, c)
	}
	for _, r := range ro.Views {
		c := *r
		c.Seq = seq
		live.Rollouts = append(live.Rollouts, c)
	}
	return live
}

func checkViews(recs []eventstore.Record, live audit.LiveViews) audit.ViewResult {
	vc := audit.NewViewCheck(live)
	last := uint64(0)
	for i := range recs {
		vc.Apply(recs[i].Position, &recs[i].Commit)
		last = recs[i].Position
	}
	return vc.Finish(last)
}

func TestViewCheck(t *testing.T) {
	t.Parallel()
	recs, err := fleet(t).Records()
	if err != nil {
		t.Fatal(err)
	}
	mid := recs[len(recs)/2].Position
	end := recs[len(recs)-1].Position
	tests := []struct {
		name     string
		live     func() audit.LiveViews
		equal    bool
		mismatch string
	}{
		{name: "idle projector at the end", live: func() audit.LiveViews { return liveAt(recs, end) }, equal: true},
		{name: "projector behind", live: func() audit.LiveViews { return liveAt(recs, mid) }, equal: true},
		{name: "keys flushed beyond the checkpoint", equal: true, live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Checkpoint = mid // the checkpoint write after the flush has not landed
			return l
		}},
		{name: "a tally off by one", mismatch: "uptake ", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Uptake[0].Count++
			return l
		}},
		{name: "a study view edited", mismatch: "study ", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Studies[0].Enrolled += 5
			return l
		}},
		{name: "a study missing from KV", mismatch: "missing from KV", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Studies = l.Studies[1:]
			return l
		}},
		{name: "a study bucket edited", mismatch: "study-time ", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Timeline[0].Enrolled++
			return l
		}},
		{name: "a study bucket missing from KV", mismatch: "study-time ", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Timeline = l.Timeline[1:]
			return l
		}},
		{name: "a key ahead of the log", mismatch: "the log ends", live: func() audit.LiveViews {
			l := liveAt(recs, end)
			l.Uptake[0].Seq = end + 10
			return l
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := checkViews(recs, tt.live())
			if res.Equal() != tt.equal || (len(res.Mismatches) == 0) != tt.equal {
				t.Fatalf("equal %t with mismatches %v; want equal %t", res.Equal(), res.Mismatches, tt.equal)
			}
			if res.Keys == 0 {
				t.Fatalf("compared no keys")
			}
			if !tt.equal {
				got := res.Mismatches[0].String()
				if len(res.Mismatches) != 1 || !strings.Contains(got, tt.mismatch) {
					t.Errorf("mismatches %v: want one saying %q", res.Mismatches, tt.mismatch)
				}
			}
		})
	}
}

// TestViewCheckRollouts: the studyd_rollouts views of a mixed-version fleet are
// compared with the fold too: an edited or a missing rollout key is a mismatch.
func TestViewCheckRollouts(t *testing.T) {
	t.Parallel()
	l, err := audittest.FleetOf(simulate.Config{Clients: 60, Days: 9, Seed: 5, Versions: simulate.MixedFleet})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Records()
	if err != nil {
		t.Fatal(err)
	}
	end := recs[len(recs)-1].Position
	if len(liveAt(recs, end).Rollouts) == 0 {
		t.Fatal("the mixed fleet has no rollouts; the test needs some")
	}
	tests := []struct {
		name     string
		edit     func(*audit.LiveViews)
		mismatch string
	}{
		{name: "as folded", edit: func(*audit.LiveViews) {}},
		{name: "a rollout view edited", mismatch: "rollout ", edit: func(l *audit.LiveViews) { l.Rollouts[0].Enrolled += 3 }},
		{name: "a rollout missing from KV", mismatch: "missing from KV", edit: func(l *audit.LiveViews) { l.Rollouts = l.Rollouts[1:] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := liveAt(recs, end)
			tt.edit(&live)
			res := checkViews(recs, live)
			if tt.mismatch == "" {
				if !res.Equal() || len(res.Mismatches) > 0 {
					t.Fatalf("mismatches %v, want none", res.Mismatches)
				}
				return
			}
			if res.Equal() || len(res.Mismatches) != 1 || !strings.Contains(res.Mismatches[0].String(), tt.mismatch) ||
				!strings.Contains(res.Mismatches[0].Key, "rollout ") {
				t.Errorf("mismatches %v: want one rollout key saying %q", res.Mismatches, tt.mismatch)
			}
		})
	}
}

// TestVerifyViewsBehindTheLog: views equal to the fold of the log up to their own
// sequence, but read when the log held more, are a stalled projector — a fault, not
// "EQUAL".
func TestVerifyViewsBehindTheLog(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	recs, err := l.Records()
	if err != nil {
		t.Fatal(err)
	}
	mid := recs[len(recs)/2].Position
	end := recs[len(recs)-1].Position
	tests := []struct {
		name   string
		live   audit.LiveViews
		behind bool
	}{
		{name: "caught up", live: withHead(liveAt(recs, end), end)},
		{name: "stalled at mid", live: withHead(liveAt(recs, mid), end), behind: true},
		{name: "head unknown", live: liveAt(recs, mid)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := verify(t, l.Entries, audit.VerifyOptions{Complete: true, Views: audit.NewViewCheck(tt.live)})
			if r.Views == nil || !r.Views.Equal() {
				t.Fatalf("views %+v: want equal to the fold at their sequence", r.Views)
			}
			var got []audit.Fault
			for _, f := range r.Faults {
				if f.Kind == audit.FaultViewsBehind {
					got = append(got, f)
				}
			}
			if tt.behind != (len(got) == 1) || r.Views.Behind() != tt.behind {
				t.Fatalf("views_behind faults %v, Behind() %t; want behind %t", got, r.Views.Behind(), tt.behind)
			}
			if tt.behind && (got[0].Seq != mid || got[0].Related != end) {
				t.Errorf("fault %v: want seq %d of %d", got[0], mid, end)
			}
		})
	}
}

func withHead(l audit.LiveViews, head uint64) audit.LiveViews {
	l.Head = head
	return l
}
