package fsm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
)

func decide(t *testing.T, s domain.ClientState, c domain.Command) fsm.Decision {
	t.Helper()
	d, err := fsm.Decide(context.Background(), s, c)
	if err != nil {
		t.Fatalf("decide %s: %v", c.Type, err)
	}
	return d
}

// lastTransition returns the last enrollment event of d.
func lastTransition(t *testing.T, d fsm.Decision) domain.Event {
	t.Helper()
	for i := len(d.Events) - 1; i >= 0; i-- {
		if d.Events[i].Type.Method() != "" {
			return d.Events[i]
		}
	}
	t.Fatalf("no enrollment event in %v", d.Events)
	return domain.Event{}
}

func TestPreferenceEnrollmentFields(t *testing.T) {
	t.Parallel()
	r := edit(prefRecipe(7, "pref-a", "browser.a", domain.RecipeSuccess), func(a *recipe.Study) { a.IsHighPopulation = true })
	c := run(1, both(), r)
	d := decide(t, domain.ClientState{}, c)

	ratios := []uint64{1, 1}
	ratios2 := []recipe.Ratio{{Slug: "control", Ratio: 1}, {Slug: "experiment", Ratio: 1}}
	i, err := domain.RatioSample(string(client)+"-pref-a-branch", ratios)
	if err != nil {
		t.Fatal(err)
	}
	study := domain.StudyRef{Object: P, Key: "pref-a"}
	id := domain.EnrollmentID(client, study, c.CommandID)
	wantEvent := domain.Event{Type: domain.EventEnrolled, Object: P, Key: "pref-a", Slug: "pref-a", EnrollmentID: id,
		From: domain.StateNone, To: domain.StateEnrolled, Branch: args(r).Branches[i].Slug,
		ExperimentType: domain.ExperimentTypeExpHighpop, Preference: "browser.a", Ratios: ratios2}
	if diff := cmp.Diff(wantEvent, lastTransition(t, d)); diff != "" {
		t.Errorf("enrolled event (-want +got):\n%s", diff)
	}
	wantEn := domain.Enrollment{Object: P, Key: "pref-a", Slug: "pref-a", Action: prefAction, EnrollmentID: id,
		State: domain.StateEnrolled, Branch: wantEvent.Branch, ExperimentType: domain.ExperimentTypeExpHighpop,
		Preference: "browser.a", EnrolledAt: at(1), LastSeen: at(1), Ratios: ratios2}
	got, _ := d.State.Find(study)
	if diff := cmp.Diff(wantEn, got); diff != "" {
		t.Errorf("enrollment (-want +got):\n%s", diff)
	}

	// Seen again: only LastSeen moves.
	d2 := decide(t, d.State, run(2, both(), r))
	got2, _ := d2.State.Find(study)
	wantEn.LastSeen = at(2)
	if diff := cmp.Diff(wantEn, got2); diff != "" {
		t.Errorf("enrollment after second run (-want +got):\n%s", diff)
	}

	// Ended: the unenroll event copies the enrollment and asks for a reset.
	d3 := decide(t, d2.State, run(3, both()))
	wantEnd := domain.Event{Type: domain.EventUnenrolled, Object: P, Key: "pref-a", Slug: "pref-a", EnrollmentID: id,
		From: domain.StateEnrolled, To: domain.StateUnenrolled, Branch: wantEvent.Branch, Preference: "browser.a",
		Reason: string(domain.ReasonRecipeNotSeen), ResetValue: true}
	if diff := cmp.Diff(wantEnd, lastTransition(t, d3)); diff != "" {
		t.Errorf("unenrolled event (-want +got):\n%s", diff)
	}
	got3, _ := d3.State.Find(study)
	wantEn.State, wantEn.EndedAt, wantEn.Reason = domain.StateUnenrolled, at(3), string(domain.ReasonRecipeNotSeen)
	if diff := cmp.Diff(wantEn, got3); diff != "" {
		t.Errorf("ended enrollment (-want +got):\n%s", diff)
	}
}

func TestPreferenceBranchFollowsRatios(t *testing.T) {
	t.Parallel()
	r := prefRecipe(7, "pref-a", "browser.a", domain.RecipeSuccess)
	r = edit(r, func(a *recipe.Study) {
		a.Branches = []recipe.Branch{{Slug: "never", Ratio: 0}, {Slug: "always", Ratio: 5}}
	})
	if got := lastTransition(t, decide(t, domain.ClientState{}, run(1, both(), r))).Branch; got != "always" {
		t.Errorf("got branch %q, want %q", got, "always")
	}
}

func TestAddonEnrollmentFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		branches   []recipe.Branch
		wantBranch func() string
	}{
		{name: "2018 unbranched", wantBranch: func() string { return "" }},
		{name: "branched", branches: []recipe.Branch{{Slug: "a", Ratio: 1}, {Slug: "b", Ratio: 1}, {Slug: "c", Ratio: 1}},
			wantBranch: func() string {
				i, err := domain.RatioSample(string(client)+"-addon-a-addon-branch", []uint64{1, 1, 1})
				if err != nil {
					t.Fatal(err)
				}
				return []string{"a", "b", "c"}[i]
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := addonRecipe(101, "addon-a", "a@shield")
			r.Action = "branched-addon-study"
			r = edit(r, func(a *recipe.Study) { a.Branches = tt.branches })
			c := run(1, okActions("branched-addon-study"), r)
			d := decide(t, domain.ClientState{}, c)
			study := domain.StudyRef{Object: A, Key: "101"}
			id := domain.EnrollmentID(client, study, c.CommandID)
			want := domain.Event{Type: domain.EventEnrolled, Object: A, Key: "101", Slug: "addon-a", EnrollmentID: id,
				From: domain.StateNone, To: domain.StateEnrolled, Branch: tt.wantBranch(), AddonID: "a@shield", AddonVersion: "1.0.0",
				Ratios: args(r).Ratios()}
			if diff := cmp.Diff(want, lastTransition(t, d)); diff != "" {
				t.Errorf("enrolled event (-want +got):\n%s", diff)
			}
			d2 := decide(t, d.State, studyRemoved(2, A, "101"))
			wantEnd := domain.Event{Type: domain.EventUnenrolled, Object: A, Key: "101", Slug: "addon-a", EnrollmentID: id,
				From: domain.StateEnrolled, To: domain.StateUnenrolled, Branch: want.Branch, AddonID: "a@shield",
				AddonVersion: "1.0.0", Reason: string(domain.ReasonIndividualOptOut)}
			if diff := cmp.Diff(wantEnd, lastTransition(t, d2)); diff != "" {
				t.Errorf("unenrolled event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnrollFailedCountsFailures(t *testing.T) {
	t.Parallel()
	s := apply(t,
		run(1, both(), addonFailed(101, "addon-a", "a.jsm:1:1 Error")),
		run(2, both(), addonFailed(101, "addon-a", "a.jsm:2:2 TypeError")))
	study := domain.StudyRef{Object: A, Key: "101"}
	en, _ := s.Find(study)
	if en.Failures != 2 || en.Reason != "a.jsm:2:2 TypeError" || en.State != domain.StateEnrollFailed {
		t.Errorf("got failures %d reason %q state %s, want 2, %q, enroll_failed", en.Failures, en.Reason, en.State, "a.jsm:2:2 TypeError")
	}
	s = apply2(t, s, run(3, both(), addonRecipe(101, "addon-a", "a@shield")))
	en, _ = s.Find(study)
	if en.Failures != 2 || en.Reason != "" || en.State != domain.StateEnrolled {
		t.Errorf("after enrolling got failures %d reason %q state %s, want 2, \"\", enrolled", en.Failures, en.Reason, en.State)
	}
}

func apply2(t *testing.T, s domain.ClientState, cmds ...domain.Command) domain.ClientState {
	t.Helper()
	for _, c := range cmds {
		s = decide(t, s, c).State
	}
	return s
}

func TestUptakeRecordedInCommandOrder(t *testing.T) {
	t.Parallel()
	c := run(1, []domain.ActionReport{{Name: "show-heartbeat", Status: domain.ActionServerError}, {Name: prefAction, Status: domain.ActionSuccess}},
		domain.RecipeReport{ID: 9, Action: "show-heartbeat", Status: domain.RecipeActionDisabled},
		prefRecipe(3, "pref-a", "browser.a", domain.RecipeSuccess))
	d := decide(t, domain.ClientState{}, c)
	var got []string
	for _, e := range d.Events {
		if e.Type == domain.EventUptakeReported {
			got = append(got, e.Source+"="+string(e.Status))
		}
	}
	want := []string{"normandy/runner=RUNNER_SUCCESS", "normandy/action/show-heartbeat=ACTION_SERVER_ERROR",
		"normandy/action/preference-experiment=ACTION_SUCCESS", "normandy/recipe/9=RECIPE_ACTION_DISABLED",
		"normandy/recipe/3=RECIPE_SUCCESS"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uptake (-want +got):\n%s", diff)
	}
	if d.Events[0].Type != domain.EventUptakeReported || d.Events[len(d.Events)-1].Type != domain.EventEnrolled {
		t.Errorf("got event order %v, want uptake first, then transitions", d.Events)
	}
	if !d.State.LastRunAt.Equal(at(1)) {
		t.Errorf("got LastRunAt %v, want %v", d.State.LastRunAt, at(1))
	}
}

func TestFailedFetchRecordsUptakeAndRunTime(t *testing.T) {
	t.Parallel()
	s := apply(t, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))
	c := domain.Command{Type: domain.CommandRecipeRun, CommandID: "sig", ClientID: client, At: at(2), RunnerStatus: domain.RunnerInvalidSignature}
	d := decide(t, s, c)
	want := []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerInvalidSignature}}
	if diff := cmp.Diff(want, d.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !d.State.LastRunAt.Equal(at(2)) {
		t.Errorf("got LastRunAt %v, want %v", d.State.LastRunAt, at(2))
	}
}

func TestStaleRunNamesBothTimes(t *testing.T) {
	t.Parallel()
	s := apply(t, run(5, both()))
	_, err := fsm.Decide(context.Background(), s, run(4, both()))
	if !errors.Is(err, domain.ErrStaleRun) {
		t.Fatalf("got %v, want ErrStaleRun", err)
	}
	for _, want := range []string{at(4).Format(time.RFC3339), at(5).Format(time.RFC3339)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestDecideDoesNotChangeItsInput(t *testing.T) {
	t.Parallel()
	s := apply(t, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), addonRecipe(101, "addon-a", "a@shield")))
	snapshot := append([]domain.Enrollment(nil), s.Enrollments...)
	d := decide(t, s, optOut(2, false))
	_ = decide(t, d.State, run(3, both()))
	if diff := cmp.Diff(snapshot, s.Enrollments); diff != "" {
		t.Errorf("input state changed (-before +after):\n%s", diff)
	}
	// The same input decides the same output: a retry after a conflict is exact.
	again := decide(t, s, domain.Command{Type: domain.CommandOptOut, CommandID: "same", ClientID: client, At: at(2)})
	again2 := decide(t, s, domain.Command{Type: domain.CommandOptOut, CommandID: "same", ClientID: client, At: at(2)})
	if diff := cmp.Diff(again, again2); diff != "" {
		t.Errorf("two decisions of one command differ:\n%s", diff)
	}
}

func TestOptOutDoesNotEndPreferenceStudies(t *testing.T) {
	t.Parallel()
	s := apply(t, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)), optOut(2, false))
	if !s.StudiesDisabled {
		t.Errorf("got StudiesDisabled false, want true")
	}
	if got := s.StateOf(domain.StudyRef{Object: P, Key: "pref-a"}); got != domain.StateEnrolled {
		t.Errorf("got state %s, want enrolled until the next run", got)
	}
	s = apply2(t, s, optOut(3, true))
	if s.StudiesDisabled {
		t.Errorf("got StudiesDisabled true after opting back in, want false")
	}
}

func TestDecideCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fsm.Decide(ctx, domain.ClientState{}, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if errors.Is(err, domain.ErrIllegalTransition) {
		t.Errorf("got %v, a canceled decision is not an illegal transition", err)
	}
}
