package projections

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

var t0 = time.Date(2018, 7, 14, 12, 34, 56, 0, time.UTC)

func uptakeEvent(source string, s domain.UptakeStatus) domain.Event {
	return domain.Event{Type: domain.EventUptakeReported, Source: source, Status: s}
}

func enrolled(o domain.Object, key, branch string) domain.Event {
	return domain.Event{Type: domain.EventEnrolled, Object: o, Key: key, Slug: key, Branch: branch,
		From: domain.StateNone, To: domain.StateEnrolled, ExperimentType: domain.ExperimentTypeExp}
}

func unenrolled(o domain.Object, key, branch string, reason domain.Reason, reset bool) domain.Event {
	return domain.Event{Type: domain.EventUnenrolled, Object: o, Key: key, Slug: key, Branch: branch,
		From: domain.StateEnrolled, To: domain.StateUnenrolled, Reason: string(reason), ResetValue: reset}
}

func failed(o domain.Object, key, reason string) domain.Event {
	return domain.Event{Type: domain.EventEnrollFailed, Object: o, Key: key, Slug: key,
		From: domain.StateNone, To: domain.StateEnrollFailed, Reason: reason}
}

func commitAt(at time.Time, events ...domain.Event) eventstore.Commit {
	return eventstore.Commit{Client: "c1", At: at, Events: events}
}

func TestUptakeFold(t *testing.T) {
	t.Parallel()
	hour := t0.Truncate(time.Hour).Unix()
	day := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC).Unix()
	nextDay := time.Date(2018, 7, 15, 0, 0, 0, 0, time.UTC).Unix()
	runner := func(p Period, start int64) UptakeKey {
		return UptakeKey{Source: domain.SourceRunner, Status: domain.RunnerSuccess, Period: p, Start: start}
	}
	tests := []struct {
		name    string
		commits []eventstore.Commit
		want    map[UptakeKey]uint64
	}{
		{name: "empty log", want: map[UptakeKey]uint64{}},
		{
			name:    "one report counts total, hour and day",
			commits: []eventstore.Commit{commitAt(t0, uptakeEvent(domain.SourceRunner, domain.RunnerSuccess))},
			want:    map[UptakeKey]uint64{runner(PeriodTotal, 0): 1, runner(PeriodHour, hour): 1, runner(PeriodDay, day): 1},
		},
		{
			name: "a later day gets its own buckets",
			commits: []eventstore.Commit{
				commitAt(t0, uptakeEvent(domain.SourceRunner, domain.RunnerSuccess)),
				commitAt(t0.Add(12*time.Hour), uptakeEvent(domain.SourceRunner, domain.RunnerSuccess)),
			},
			want: map[UptakeKey]uint64{runner(PeriodTotal, 0): 2, runner(PeriodHour, hour): 1, runner(PeriodDay, day): 1,
				runner(PeriodHour, hour+12*3600): 1, runner(PeriodDay, nextDay): 1},
		},
		{
			name: "non-UTC times bucket by UTC",
			commits: []eventstore.Commit{commitAt(t0.In(time.FixedZone("X", -11*3600)),
				uptakeEvent(domain.SourceRunner, domain.RunnerSuccess))},
			want: map[UptakeKey]uint64{runner(PeriodTotal, 0): 1, runner(PeriodHour, hour): 1, runner(PeriodDay, day): 1},
		},
		{
			name: "enrollment events are not uptake",
			commits: []eventstore.Commit{commitAt(t0, enrolled(domain.PreferenceStudy, "s", "a"),
				domain.Event{Type: "from_the_future"})},
			want: map[UptakeKey]uint64{},
		},
		{
			name: "same label under two sources stays apart",
			commits: []eventstore.Commit{commitAt(t0,
				uptakeEvent(domain.ActionSource("preference-experiment"), domain.ActionPreExecutionError),
				uptakeEvent(domain.RecipeSource(7), domain.RecipeActionDisabled))},
			want: map[UptakeKey]uint64{
				{Source: "normandy/action/preference-experiment", Status: domain.ActionPreExecutionError}:                                  1,
				{Source: "normandy/action/preference-experiment", Status: domain.ActionPreExecutionError, Period: PeriodHour, Start: hour}: 1,
				{Source: "normandy/action/preference-experiment", Status: domain.ActionPreExecutionError, Period: PeriodDay, Start: day}:   1,
				{Source: "normandy/recipe/7", Status: domain.RecipeActionDisabled}:                                                         1,
				{Source: "normandy/recipe/7", Status: domain.RecipeActionDisabled, Period: PeriodHour, Start: hour}:                        1,
				{Source: "normandy/recipe/7", Status: domain.RecipeActionDisabled, Period: PeriodDay, Start: day}:                          1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := NewUptake()
			for i := range tt.commits {
				u.Apply(uint64(i+1), &tt.commits[i])
			}
			if diff := cmp.Diff(tt.want, u.Counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUptakeIgnoresFoldedPositions(t *testing.T) {
	t.Parallel()
	u := NewUptake()
	c := commitAt(t0, uptakeEvent(domain.SourceRunner, domain.RunnerSuccess))
	if !u.Apply(5, &c) {
		t.Fatalf("Apply(5) = false on empty tallies, want true")
	}
	for _, pos := range []uint64{5, 3} {
		if u.Apply(pos, &c) {
			t.Errorf("Apply(%d) after 5 = true, want false", pos)
		}
	}
	if got := u.Counts[UptakeKey{Source: domain.SourceRunner, Status: domain.RunnerSuccess}]; got != 1 {
		t.Errorf("total = %d, want 1", got)
	}
}

func TestHealthOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status domain.UptakeStatus
		want   Health
	}{
		{name: "runner success", status: domain.RunnerSuccess, want: HealthGood},
		{name: "recipe success", status: domain.RecipeSuccess, want: HealthGood},
		{name: "signature error", status: domain.RunnerInvalidSignature, want: HealthBad},
		{name: "action disabled is an error label", status: domain.RecipeActionDisabled, want: HealthBad},
		{name: "unknown status", status: "WHATEVER", want: HealthBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := HealthOf(tt.status); got != tt.want {
				t.Errorf("HealthOf(%s) = %s, want %s", tt.status, got, tt.want)
			}
		})
	}
	var h HealthCounts
	h.Add(domain.RunnerSuccess, 98)
	h.Add(domain.RunnerNetworkError, 2)
	if got := h.BadRatio(); got != 0.02 {
		t.Errorf("BadRatio = %v, want 0.02", got)
	}
}

func TestStudiesFold(t *testing.T) {
	t.Parallel()
	pref := domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-1"}
	addon := domain.StudyRef{Object: domain.AddonStudy, Key: "42"}
	tests := []struct {
		name    string
		commits []eventstore.Commit
		want    map[domain.StudyRef]*StudyView
	}{
		{name: "uptake only", commits: []eventstore.Commit{commitAt(t0, uptakeEvent(domain.SourceRunner, domain.RunnerSuccess))},
			want: map[domain.StudyRef]*StudyView{}},
		{
			name: "enroll, unenroll with reset, enroll on another branch",
			commits: []eventstore.Commit{
				commitAt(t0, enrolled(domain.PreferenceStudy, "pref-1", "control")),
				commitAt(t0, enrolled(domain.PreferenceStudy, "pref-1", "treatment")),
				commitAt(t0, unenrolled(domain.PreferenceStudy, "pref-1", "control", domain.ReasonRecipeNotSeen, true)),
			},
			want: map[domain.StudyRef]*StudyView{pref: {
				Object: domain.PreferenceStudy, Key: "pref-1", Slug: "pref-1", Seq: 3, Enrolled: 2, Active: 1,
				Branches:        map[string]BranchCount{"control": {Enrolled: 1, Active: 0}, "treatment": {Enrolled: 1, Active: 1}},
				Unenrolled:      map[string]uint64{"recipe-not-seen": 1},
				DidResetValue:   map[string]uint64{"true": 1},
				ExperimentTypes: map[string]uint64{"exp": 1 + 1},
			}},
		},
		{
			name: "add-on study: failed install, then enrolled, then uninstalled",
			commits: []eventstore.Commit{
				commitAt(t0, failed(domain.AddonStudy, "42", "download-failure")),
				commitAt(t0, domain.Event{Type: domain.EventEnrolled, Object: domain.AddonStudy, Key: "42", Slug: "addon-x",
					Branch: "a", From: domain.StateEnrollFailed, To: domain.StateEnrolled}),
				commitAt(t0, unenrolled(domain.AddonStudy, "42", "a", domain.ReasonUninstalled, false)),
			},
			want: map[domain.StudyRef]*StudyView{addon: {
				Object: domain.AddonStudy, Key: "42", Slug: "42", Seq: 3, Enrolled: 1, Active: 0,
				Branches:     map[string]BranchCount{"a": {Enrolled: 1}},
				Unenrolled:   map[string]uint64{"uninstalled": 1},
				EnrollFailed: map[string]uint64{"download-failure": 1},
			}},
		},
		{
			name: "add-on study without branches: counted in the totals, no \"\" branch",
			commits: []eventstore.Commit{
				commitAt(t0, enrolled(domain.AddonStudy, "42", "")),
				commitAt(t0, unenrolled(domain.AddonStudy, "42", "", domain.ReasonUninstalled, false)),
			},
			want: map[domain.StudyRef]*StudyView{addon: {
				Object: domain.AddonStudy, Key: "42", Slug: "42", Seq: 2, Enrolled: 1, Active: 0,
				Unenrolled: map[string]uint64{"uninstalled": 1},
			}},
		},
		{
			name: "two studies in one commit",
			commits: []eventstore.Commit{commitAt(t0,
				enrolled(domain.PreferenceStudy, "pref-1", "b"), enrolled(domain.AddonStudy, "42", "b"))},
			want: map[domain.StudyRef]*StudyView{
				pref: {Object: domain.PreferenceStudy, Key: "pref-1", Slug: "pref-1", Seq: 1, Enrolled: 1, Active: 1,
					Branches: map[string]BranchCount{"b": {Enrolled: 1, Active: 1}}, ExperimentTypes: map[string]uint64{"exp": 1}},
				addon: {Object: domain.AddonStudy, Key: "42", Slug: "42", Seq: 1, Enrolled: 1, Active: 1,
					Branches: map[string]BranchCount{"b": {Enrolled: 1, Active: 1}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewStudies()
			for i := range tt.commits {
				s.Apply(uint64(i+1), &tt.commits[i])
			}
			if diff := cmp.Diff(tt.want, s.Views); diff != "" {
				t.Errorf("views (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientViewOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rec  eventstore.Record
		want ClientView
	}{
		{name: "unknown client", want: ClientView{Client: "c1", Enrollments: []domain.Enrollment{}}},
		{
			name: "latest commit's state",
			rec: eventstore.Record{Position: 9, Commit: eventstore.Commit{At: t0, State: domain.ClientState{
				Client: "c1", StudiesDisabled: true, LastRunAt: t0,
				Enrollments: []domain.Enrollment{{Object: domain.PreferenceStudy, Key: "s", State: domain.StateEnrolled}},
			}}},
			want: ClientView{Client: "c1", Seq: 9, At: t0, StudiesDisabled: true, LastRunAt: t0,
				Enrollments: []domain.Enrollment{{Object: domain.PreferenceStudy, Key: "s", State: domain.StateEnrolled}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, ClientViewOf("c1", tt.rec)); diff != "" {
				t.Errorf("ClientViewOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePeriod(t *testing.T) {
	t.Parallel()
	for _, p := range []Period{PeriodTotal, PeriodHour, PeriodDay} {
		got, err := ParsePeriod(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v, nil", p.String(), got, err, p)
		}
	}
	if _, err := ParsePeriod("week"); err == nil {
		t.Errorf("ParsePeriod(week) error = nil, want an error")
	}
}

// TestStudyViewKeepsRecordedRatios: the study view knows its target split from the
// ratios its enrollments recorded, the latest winning, and merging views of two ranges
// gives what one fold of both gives.
func TestStudyViewKeepsRecordedRatios(t *testing.T) {
	t.Parallel()
	old := []recipe.Ratio{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}
	now := []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "treatment", Ratio: 25}, {Slug: "treatment-2", Ratio: 25}}
	e1, e2 := enrolled(domain.PreferenceStudy, "s", "control"), enrolled(domain.PreferenceStudy, "s", "treatment-2")
	e1.Ratios, e2.Ratios = old, now
	e3 := unenrolled(domain.PreferenceStudy, "s", "control", domain.ReasonRecipeNotSeen, true)
	commits := []eventstore.Commit{commitAt(t0, e1), commitAt(t0, e2), commitAt(t0, e3)}

	whole := NewStudies()
	for i := range commits {
		whole.Apply(uint64(i+1), &commits[i])
	}
	ref := domain.StudyRef{Object: domain.PreferenceStudy, Key: "s"}
	if diff := cmp.Diff(now, whole.Views[ref].Ratios); diff != "" {
		t.Errorf("ratios after the fold (-want +got):\n%s", diff)
	}
	for split := 1; split < len(commits); split++ {
		a, b := NewStudies(), NewStudies()
		for i := range commits {
			if i < split {
				a.Apply(uint64(i+1), &commits[i])
			} else {
				b.Apply(uint64(i+1), &commits[i])
			}
		}
		a.Merge(b)
		if diff := cmp.Diff(whole.Views[ref].Ratios, a.Views[ref].Ratios); diff != "" {
			t.Errorf("split at %d: merged ratios (-fold +merge):\n%s", split, diff)
		}
	}
}
