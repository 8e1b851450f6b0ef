package projections

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"pgregory.net/rapid"
)

// genEvent draws any event a fold may meet, including ones it must ignore.
func genEvent(t *rapid.T) domain.Event {
	studies := []domain.StudyRef{{Object: domain.PreferenceStudy, Key: "p1"}, {Object: domain.PreferenceStudy, Key: "p2"},
		{Object: domain.AddonStudy, Key: "7"}}
	states := domain.States
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		src := rapid.SampledFrom([]string{domain.SourceRunner, domain.ActionSource("addon-study"), domain.RecipeSource(7)}).Draw(t, "source")
		kind, _ := domain.SourceKind(src)
		return uptakeEvent(src, rapid.SampledFrom(domain.StatusesFor(kind)).Draw(t, "status"))
	case 1:
		return domain.Event{Type: domain.EventStudiesOptOutChanged}
	default:
		s := rapid.SampledFrom(studies).Draw(t, "study")
		return domain.Event{
			Type:           rapid.SampledFrom([]domain.EventType{domain.EventEnrolled, domain.EventUnenrolled, domain.EventEnrollFailed}).Draw(t, "type"),
			Object:         s.Object,
			Key:            s.Key,
			Slug:           rapid.SampledFrom([]string{"", "slug-a", "slug-b"}).Draw(t, "slug"),
			Branch:         rapid.SampledFrom([]string{"control", "treatment"}).Draw(t, "branch"),
			From:           rapid.SampledFrom(states).Draw(t, "from"),
			To:             rapid.SampledFrom(states).Draw(t, "to"),
			Reason:         rapid.SampledFrom([]string{"recipe-not-seen", "unknown", "download-failure"}).Draw(t, "reason"),
			ResetValue:     rapid.Bool().Draw(t, "reset"),
			ExperimentType: rapid.SampledFrom(domain.ExperimentTypes).Draw(t, "experiment_type"),
		}
	}
}

func genLog(t *rapid.T) []eventstore.Commit {
	n := rapid.IntRange(0, 40).Draw(t, "commits")
	log := make([]eventstore.Commit, n)
	at := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC)
	for i := range log {
		at = at.Add(time.Duration(rapid.IntRange(0, 20*3600).Draw(t, "gap")) * time.Second)
		log[i] = eventstore.Commit{Client: "c", At: at,
			Events: rapid.SliceOfN(rapid.Custom(genEvent), 0, 5).Draw(t, "events")}
	}
	return log
}

// genCuts draws sorted cut points splitting n commits into consecutive parts.
func genCuts(t *rapid.T, n int) []int {
	cuts := rapid.SliceOfN(rapid.IntRange(0, n), 0, 4).Draw(t, "cuts")
	cuts = append(cuts, 0, n)
	slices.Sort(cuts)
	return slices.Compact(cuts)
}

func foldUptake(log []eventstore.Commit, from, to int) *Uptake {
	u := NewUptake()
	for i := from; i < to; i++ {
		u.Apply(uint64(i+1), &log[i])
	}
	return u
}

func foldStudies(log []eventstore.Commit, from, to int) *Studies {
	s := NewStudies()
	for i := from; i < to; i++ {
		s.Apply(uint64(i+1), &log[i])
	}
	return s
}

// TestFoldSplitProperty: folding a log in parts, whether resumed from a saved view,
// merged from independent folds, or with some commits delivered again, gives the view
// of folding it whole.
func TestFoldSplitProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		log := genLog(t)
		cuts := genCuts(t, len(log))
		wholeU, wholeS := foldUptake(log, 0, len(log)), foldStudies(log, 0, len(log))

		// Resumed: each part continues from the previous part's views after a JSON
		// round trip of every study view, as the projector does through KV.
		resumedU, resumedS := NewUptake(), NewStudies()
		mergedU, mergedS := NewUptake(), NewStudies()
		for p := 0; p+1 < len(cuts); p++ {
			from, to := cuts[p], cuts[p+1]
			// Redeliver a random earlier stretch first: it must change nothing.
			again := rapid.IntRange(0, from).Draw(t, "redeliver_from")
			for i := again; i < to; i++ {
				resumedU.Apply(uint64(i+1), &log[i])
				resumedS.Apply(uint64(i+1), &log[i])
			}
			resumedS = roundTrip(t, resumedS)
			mergedU.Merge(foldUptake(log, from, to))
			mergedS.Merge(foldStudies(log, from, to))
		}
		for name, got := range map[string]*Uptake{"resumed": resumedU, "merged": mergedU} {
			if diff := cmp.Diff(wholeU, got); diff != "" {
				t.Fatalf("%s uptake differs from whole fold (-whole +%s):\n%s", name, name, diff)
			}
		}
		for name, got := range map[string]*Studies{"resumed": resumedS, "merged": mergedS} {
			if diff := cmp.Diff(wholeS, got); diff != "" {
				t.Fatalf("%s studies differ from whole fold (-whole +%s):\n%s", name, name, diff)
			}
		}
	})
}

func roundTrip(t *rapid.T, s *Studies) *Studies {
	out := NewStudies()
	out.Seq = s.Seq
	for ref, v := range s.Views {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %s: %v", ref, err)
		}
		var back StudyView
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", ref, err)
		}
		out.Views[ref] = &back
	}
	return out
}

// benchLog is a day of a small fleet: each commit a recipe run with three uptake
// reports and, every few commits, an enrollment change.
func benchLog(n int) []eventstore.Commit {
	log := make([]eventstore.Commit, n)
	at := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC)
	for i := range log {
		ev := []domain.Event{
			uptakeEvent(domain.SourceRunner, domain.RunnerSuccess),
			uptakeEvent(domain.ActionSource("preference-experiment"), domain.ActionSuccess),
			uptakeEvent(domain.RecipeSource(domain.RecipeID(i%50)), domain.RecipeSuccess),
		}
		switch i % 4 {
		case 0:
			ev = append(ev, enrolled(domain.PreferenceStudy, "pref-"+string(rune('a'+i%20)), "control"))
		case 1:
			ev = append(ev, unenrolled(domain.PreferenceStudy, "pref-"+string(rune('a'+i%20)), "control", domain.ReasonRecipeNotSeen, true))
		}
		log[i] = eventstore.Commit{Client: "c", At: at.Add(time.Duration(i) * time.Second), Events: ev}
	}
	return log
}

// BenchmarkFold measures the audit replay hot path: both folds over commits already
// decoded. Reported per commit.
func BenchmarkFold(b *testing.B) {
	log := benchLog(10000)
	u, s := NewUptake(), NewStudies()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &log[i%len(log)]
		pos := uint64(i + 1)
		u.Apply(pos, c)
		s.Apply(pos, c)
	}
}
