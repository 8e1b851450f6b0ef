package projections

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
	"pgregory.net/rapid"
)

func TestStudyTimelineFold(t *testing.T) {
	t.Parallel()
	pref := domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-1"}
	hour := t0.Truncate(time.Hour)
	day := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC)
	later := t0.Add(25 * time.Minute) // same hour and day as t0
	run := func(at time.Time, recipes []domain.RecipeID, events ...domain.Event) eventstore.Commit {
		for _, id := range recipes {
			events = append(events, uptakeEvent(domain.RecipeSource(id), domain.RecipeSuccess))
		}
		c := commitAt(at, events...)
		c.State.Enrollments = []domain.Enrollment{{Object: domain.PreferenceStudy, Key: "pref-1", Action: "preference-experiment"}}
		return c
	}
	hk := StudyBucketKey{Study: pref, Period: PeriodHour, Start: hour.Unix()}
	dk := StudyBucketKey{Study: pref, Period: PeriodDay, Start: day.Unix()}
	bucket := func(k StudyBucketKey, seq uint64, b StudyBucket) *StudyBucket {
		b.Object, b.Key, b.Period, b.Start, b.Seq = k.Study.Object, k.Study.Key, k.Period.String(), k.BucketStart(), seq
		return &b
	}
	tests := []struct {
		name    string
		commits []eventstore.Commit
		want    map[StudyBucketKey]*StudyBucket
	}{
		{name: "uptake only", commits: []eventstore.Commit{run(t0, []domain.RecipeID{7})},
			want: map[StudyBucketKey]*StudyBucket{}},
		{
			name: "branches, reasons, times and the recipe common to both enrolling runs",
			commits: []eventstore.Commit{
				run(t0, []domain.RecipeID{7, 9}, enrolled(domain.PreferenceStudy, "pref-1", "control")),
				run(later, []domain.RecipeID{3, 7}, enrolled(domain.PreferenceStudy, "pref-1", "treatment")),
				run(later, nil, unenrolled(domain.PreferenceStudy, "pref-1", "control", domain.ReasonUserPreferenceChanged, true)),
			},
			want: func() map[StudyBucketKey]*StudyBucket {
				b := StudyBucket{First: t0, Last: later, Action: "preference-experiment", Enrolled: 2,
					Branches:   map[string]BranchActivity{"control": {Enrolled: 1, Unenrolled: 1}, "treatment": {Enrolled: 1}},
					Unenrolled: map[string]uint64{"user-preference-changed": 1}, Recipes: []domain.RecipeID{7}, RecipeEvents: 2}
				return map[StudyBucketKey]*StudyBucket{hk: bucket(hk, 3, b), dk: bucket(dk, 3, b)}
			}(),
		},
		{
			name: "an unenrollment does not narrow the recipe: recipe-not-seen comes from runs without it",
			commits: []eventstore.Commit{
				run(t0, []domain.RecipeID{7}, enrolled(domain.PreferenceStudy, "pref-1", "control")),
				run(t0, []domain.RecipeID{8}, unenrolled(domain.PreferenceStudy, "pref-1", "control", domain.ReasonRecipeNotSeen, true)),
			},
			want: func() map[StudyBucketKey]*StudyBucket {
				b := StudyBucket{First: t0, Last: t0, Action: "preference-experiment", Enrolled: 1,
					Branches:   map[string]BranchActivity{"control": {Enrolled: 1, Unenrolled: 1}},
					Unenrolled: map[string]uint64{"recipe-not-seen": 1}, Recipes: []domain.RecipeID{7}, RecipeEvents: 1}
				return map[StudyBucketKey]*StudyBucket{hk: bucket(hk, 2, b), dk: bucket(dk, 2, b)}
			}(),
		},
		{
			name: "the recipe whose recorded arguments name the study, among others in the run",
			commits: func() []eventstore.Commit {
				recipe := func(id domain.RecipeID, slug string) domain.Event {
					e := uptakeEvent(domain.RecipeSource(id), domain.RecipeSuccess)
					e.Action = "preference-experiment"
					e.Arguments = domain.JSONText(recipe.Must(map[string]any{"slug": slug}))
					return e
				}
				c := run(t0, nil, enrolled(domain.PreferenceStudy, "pref-1", "control"), recipe(7, "pref-1"), recipe(9, "pref-2"))
				return []eventstore.Commit{c}
			}(),
			want: func() map[StudyBucketKey]*StudyBucket {
				b := StudyBucket{First: t0, Last: t0, Action: "preference-experiment", Enrolled: 1,
					Branches: map[string]BranchActivity{"control": {Enrolled: 1}}, Recipes: []domain.RecipeID{7}, RecipeEvents: 1}
				return map[StudyBucketKey]*StudyBucket{hk: bucket(hk, 1, b), dk: bucket(dk, 1, b)}
			}(),
		},
		{
			name: "failures by reason; the next hour has its own bucket",
			commits: []eventstore.Commit{
				commitAt(t0, failed(domain.AddonStudy, "42", "download-failure")),
				commitAt(t0.Add(time.Hour), failed(domain.AddonStudy, "42", "download-failure")),
			},
			want: func() map[StudyBucketKey]*StudyBucket {
				ref := domain.StudyRef{Object: domain.AddonStudy, Key: "42"}
				h1 := StudyBucketKey{Study: ref, Period: PeriodHour, Start: hour.Unix()}
				h2 := StudyBucketKey{Study: ref, Period: PeriodHour, Start: hour.Unix() + 3600}
				d := StudyBucketKey{Study: ref, Period: PeriodDay, Start: day.Unix()}
				one := func(at time.Time) StudyBucket {
					return StudyBucket{First: at, Last: at,
						EnrollFailed: map[string]uint64{"download-failure": 1}, RecipeEvents: 1}
				}
				both := StudyBucket{First: t0, Last: t0.Add(time.Hour),
					EnrollFailed: map[string]uint64{"download-failure": 2}, RecipeEvents: 2}
				return map[StudyBucketKey]*StudyBucket{h1: bucket(h1, 1, one(t0)), h2: bucket(h2, 2, one(t0.Add(time.Hour))), d: bucket(d, 2, both)}
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tl := NewStudyTimeline()
			for i := range tt.commits {
				tl.Apply(uint64(i+1), &tt.commits[i])
			}
			if diff := cmp.Diff(tt.want, tl.Buckets); diff != "" {
				t.Errorf("buckets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecipeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		source string
		want   domain.RecipeID
		ok     bool
	}{
		{name: "recipe", source: domain.RecipeSource(42), want: 42, ok: true},
		{name: "runner", source: domain.SourceRunner},
		{name: "action", source: domain.ActionSource("addon-study")},
		{name: "not a number", source: "normandy/recipe/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RecipeOf(tt.source)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RecipeOf(%q) = %d, %v; want %d, %v", tt.source, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func foldTimeline(log []eventstore.Commit, from, to int) *StudyTimeline {
	tl := NewStudyTimeline()
	for i := from; i < to; i++ {
		tl.Apply(uint64(i+1), &log[i])
	}
	return tl
}

// TestTimelineSplitProperty: the timeline folded in parts, resumed from buckets that
// went through JSON (as the projector's do through KV) with some commits delivered
// again, or merged from independent folds, is the timeline of the whole log.
func TestTimelineSplitProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		log := genLog(t)
		for i := range log {
			if rapid.Bool().Draw(t, "recipes") {
				for _, id := range rapid.SliceOfN(rapid.SampledFrom([]domain.RecipeID{1, 2, 3}), 0, 3).Draw(t, "ids") {
					log[i].Events = append(log[i].Events, uptakeEvent(domain.RecipeSource(id), domain.RecipeSuccess))
				}
			}
			log[i].State.Enrollments = []domain.Enrollment{{Object: domain.PreferenceStudy, Key: "p1",
				Action: rapid.SampledFrom([]string{"", "preference-experiment"}).Draw(t, "action")}}
		}
		cuts := genCuts(t, len(log))
		whole := foldTimeline(log, 0, len(log))
		resumed, merged := NewStudyTimeline(), NewStudyTimeline()
		for p := 0; p+1 < len(cuts); p++ {
			from, to := cuts[p], cuts[p+1]
			again := rapid.IntRange(0, from).Draw(t, "redeliver_from")
			for i := again; i < to; i++ {
				resumed.Apply(uint64(i+1), &log[i])
			}
			resumed = timelineRoundTrip(t, resumed)
			merged.Merge(foldTimeline(log, from, to))
		}
		for name, got := range map[string]*StudyTimeline{"resumed": resumed, "merged": merged} {
			if diff := cmp.Diff(whole, got); diff != "" {
				t.Fatalf("%s timeline differs from whole fold (-whole +%s):\n%s", name, name, diff)
			}
		}
	})
}

func timelineRoundTrip(t *rapid.T, tl *StudyTimeline) *StudyTimeline {
	out := NewStudyTimeline()
	out.Seq = tl.Seq
	for k, b := range tl.Buckets {
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal %v: %v", k, err)
		}
		var back StudyBucket
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("unmarshal %v: %v", k, err)
		}
		if back.BucketKey() != k {
			t.Fatalf("round trip of %v gives key %v", k, back.BucketKey())
		}
		out.Buckets[k] = &back
	}
	return out
}
