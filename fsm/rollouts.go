package fsm

import (
	"context"
	"fmt"
	"slices"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

// rolloutRecipe applies one executed preference-rollout or preference-rollback recipe,
// as later Firefox's PreferenceRolloutAction and PreferenceRollbackAction did (from the
// preference-rollouts rule on), and returns why it decided nothing when that is worth
// an audit's note.
//
// A rollout recipe:
//   - none: RECIPE_EXECUTION_ERROR with the enrollError the client added is
//     enrollFailed (conflict, "invalid type", would-be-no-op, with its preference); a
//     preference another active rollout manages is enrollFailed conflict; otherwise the
//     rollout enrolls (active).
//   - active, graduated or rolled_back: values that differ from those applied are an
//     update (to active, recording the previous state); the same values are a no-op.
//
// A rollback recipe (its rolloutSlug): an active rollout is rolled back (unenroll
// preference_rollback, reason rollback); a graduated one fails (unenrollFailed,
// graduated or in-graduation-set); an unknown or rolled-back one is a no-op.
func (d *decider) rolloutRecipe(ctx context.Context, r domain.RecipeReport) (string, error) {
	obj, _ := domain.RolloutObjectForAction(r.Action)
	a, err := domain.ReadArguments(r.Arguments)
	if err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	if obj == domain.PreferenceRollback {
		return d.rollback(ctx, a)
	}
	if err := domain.ValidateToken("arguments.slug", a.Slug); err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	if len(a.RolloutPreferences) == 0 {
		return "unusable arguments: arguments.preferences is empty (a rollout sets at least one preference)", nil
	}
	names := make([]string, 0, len(a.RolloutPreferences))
	for _, p := range a.RolloutPreferences {
		if p.PreferenceName == "" {
			return "unusable arguments: a preference of arguments.preferences has no preferenceName", nil
		}
		names = append(names, p.PreferenceName)
	}
	slices.Sort(names)
	values, err := recipe.New(a.RolloutPreferences)
	if err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	ref := domain.StudyRef{Object: domain.PreferenceRollout, Key: a.Slug}
	en, exists := d.state.Find(ref)
	if !exists {
		en = domain.Enrollment{Object: domain.PreferenceRollout, Key: a.Slug, Slug: a.Slug, Action: r.Action}
		if r.Status == domain.RecipeExecutionError {
			if a.EnrollError == "" {
				return "", nil
			}
			if !slices.Contains(domain.RolloutEnrollFailedReasons, a.EnrollError) {
				return fmt.Sprintf("unusable arguments: enrollError %q (allowed: %q)", a.EnrollError, domain.RolloutEnrollFailedReasons), nil
			}
			return "", d.transition(ctx, en, domain.Event{Type: domain.EventEnrollFailed, Slug: a.Slug, Reason: a.EnrollError,
				Preference: a.EnrollErrorPreference})
		}
		for _, other := range d.state.Enrollments {
			if other.Object != domain.PreferenceRollout || other.State != domain.StateActive {
				continue
			}
			for _, n := range names {
				if other.Uses(n) {
					return "", d.transition(ctx, en, domain.Event{Type: domain.EventEnrollFailed, Slug: a.Slug, Reason: "conflict", Preference: n})
				}
			}
		}
		en.Preferences, en.BranchValue = names, domain.JSONText(values)
		en.EnrollmentID = domain.EnrollmentID(d.state.Client, ref, d.cmd.CommandID)
		en.EnrolledAt, en.LastSeen = d.cmd.At, d.cmd.At
		return "", d.transition(ctx, en, domain.Event{Type: domain.EventEnrolled, Slug: a.Slug, EnrollmentID: en.EnrollmentID,
			BranchValue: en.BranchValue})
	}
	if r.Status != domain.RecipeSuccess {
		return "", nil
	}
	en.LastSeen = d.cmd.At
	if en.BranchValue == domain.JSONText(values) {
		d.put(en)
		return "", nil
	}
	en.Preferences, en.BranchValue, en.Reason = names, domain.JSONText(values), ""
	return "", d.transition(ctx, en, domain.Event{Type: domain.EventUpdated, Slug: en.Slug, EnrollmentID: en.EnrollmentID,
		BranchValue: en.BranchValue})
}

// rollback applies a preference-rollback recipe to the rollout it names.
func (d *decider) rollback(ctx context.Context, a recipe.Study) (string, error) {
	if err := domain.ValidateToken("arguments.rolloutSlug", a.RolloutSlug); err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	ref := domain.StudyRef{Object: domain.PreferenceRollout, Key: a.RolloutSlug}
	en, ok := d.state.Find(ref)
	if !ok {
		return "rollback of a rollout this client never had: nothing to do", nil
	}
	ev := domain.Event{Object: domain.PreferenceRollback, Slug: en.Slug, EnrollmentID: en.EnrollmentID}
	switch en.State {
	case domain.StateActive:
		en.EndedAt, en.Reason = d.cmd.At, string(domain.ReasonRollback)
		ev.Type, ev.Reason = domain.EventUnenrolled, string(domain.ReasonRollback)
		return "", d.transition(ctx, en, ev)
	case domain.StateGraduated:
		ev.Type, ev.Reason = domain.EventUnenrollFailed, "graduated"
		if en.Reason == string(domain.ReasonGraduateInGraduationSet) {
			ev.Reason = "in-graduation-set"
		}
		return "", d.transition(ctx, en, ev)
	}
	return "", nil // already rolled back
}

// rolloutGraduated decides a rollout found graduated at startup: an active rollout
// graduates with the command's reason (all-prefs-match when none is given). A rollout in
// any other state is refused: Firefox graduates only active ones.
func (d *decider) rolloutGraduated(ctx context.Context) error {
	ref := *d.cmd.Study
	en, ok := d.state.Find(ref)
	if !ok || en.State != domain.StateActive {
		st := domain.StateNone
		if ok {
			st = en.State
		}
		return fmt.Errorf("%w: %s is %s on this client (only an active rollout graduates)", domain.ErrIllegalTransition, ref, st)
	}
	reason := d.cmd.Reason
	if reason == "" {
		reason = domain.ReasonGraduateAllPrefsMatch
	}
	en.Reason = string(reason)
	return d.transition(ctx, en, domain.Event{Type: domain.EventGraduated, Slug: en.Slug, EnrollmentID: en.EnrollmentID, Reason: string(reason)})
}
