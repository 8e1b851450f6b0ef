package projections

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// TestRolloutViews folds a rollout's lifecycle across two clients into its own view,
// and checks that study views ignore rollout events and rollout views study events.
func TestRolloutViews(t *testing.T) {
	t.Parallel()
	ro := func(typ domain.EventType, obj domain.Object, from, to domain.State, reason string) domain.Event {
		return domain.Event{Type: typ, Object: obj, Key: "tls13", Slug: "tls13", From: from, To: to, Reason: reason}
	}
	commits := []eventstore.Commit{
		{Events: []domain.Event{ro(domain.EventEnrolled, domain.PreferenceRollout, domain.StateNone, domain.StateActive, "")}},
		{Events: []domain.Event{ro(domain.EventEnrolled, domain.PreferenceRollout, domain.StateNone, domain.StateActive, "")}},
		{Events: []domain.Event{ro(domain.EventGraduated, domain.PreferenceRollout, domain.StateActive, domain.StateGraduated, "all-prefs-match")}},
		{Events: []domain.Event{ro(domain.EventUnenrolled, domain.PreferenceRollback, domain.StateActive, domain.StateRolledBack, "rollback")}},
		{Events: []domain.Event{ro(domain.EventUnenrollFailed, domain.PreferenceRollback, domain.StateGraduated, domain.StateGraduated, "graduated")}},
		{Events: []domain.Event{ro(domain.EventUpdated, domain.PreferenceRollout, domain.StateGraduated, domain.StateActive, "")}},
		{Events: []domain.Event{ro(domain.EventEnrollFailed, domain.PreferenceRollout, domain.StateNone, domain.StateNone, "conflict"),
			{Type: domain.EventUnenrollFailed, Object: domain.PreferenceStudy, Key: "p", From: domain.StateNone, To: domain.StateNone, Reason: "does-not-exist"}}},
	}
	rollouts, studies := NewRollouts(), NewStudies()
	for i := range commits {
		rollouts.Apply(uint64(i+1), &commits[i])
		studies.Apply(uint64(i+1), &commits[i])
	}
	want := &RolloutView{Slug: "tls13", Seq: 7, Enrolled: 2,
		States:         map[domain.State]int64{domain.StateActive: 1, domain.StateGraduated: 0, domain.StateRolledBack: 1},
		Updated:        map[domain.State]uint64{domain.StateGraduated: 1},
		EnrollFailed:   map[string]uint64{"conflict": 1},
		Graduated:      map[string]uint64{"all-prefs-match": 1},
		RolledBack:     1,
		UnenrollFailed: map[string]uint64{"graduated": 1},
	}
	if diff := cmp.Diff(want, rollouts.View("tls13")); diff != "" {
		t.Errorf("rollout view (-want +got):\n%s", diff)
	}
	if len(studies.Views) != 1 || studies.Views[domain.StudyRef{Object: domain.PreferenceStudy, Key: "p"}].UnenrollFailed["does-not-exist"] != 1 {
		t.Errorf("study views: got %v, want only preference_study/p with one unenrollFailed", studies.Views)
	}
	// Views of two halves merge to the view of the whole.
	a, b := NewRollouts(), NewRollouts()
	for i := range commits {
		if i < 3 {
			a.Apply(uint64(i+1), &commits[i])
		} else {
			b.Apply(uint64(i+1), &commits[i])
		}
	}
	a.Merge(b)
	if diff := cmp.Diff(rollouts.View("tls13"), a.View("tls13")); diff != "" {
		t.Errorf("merged halves differ from the whole (-whole +merged):\n%s", diff)
	}
}
