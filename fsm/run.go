package fsm

import (
	"context"
	"fmt"
	"time"

	"github.com/studyd/studyd/domain"
)

// recipeRun decides one execution of the recipe runner, in the 2018 shape: fetch,
// execute the matching recipes, then each action's postExecution ("finalize").
//
//   - A run older than the newest applied run is stale and refused: it must not undo
//     newer state. A run at the same instant is accepted.
//   - Every uptake status is recorded exactly as reported, runner first, then actions
//     and recipes in command order.
//   - A run whose fetch failed (runner status other than RUNNER_SUCCESS) stops there:
//     Firefox never finalized such a run, so nothing is unenrolled.
//   - While the client has opted out, study recipes are skipped entirely: the 2018
//     actions returned early without marking the study seen, so a still-enrolled
//     preference study ends at this run's finalize with recipe-not-seen.
//   - A study recipe that executed (RECIPE_SUCCESS or RECIPE_EXECUTION_ERROR) marks its
//     study seen; see studyRecipe for what it does to the enrollment.
//   - finalize then ends, with recipe-not-seen, the unseen enrolled studies of each
//     study action reported with ACTION_SUCCESS.
func (d *decider) recipeRun(ctx context.Context) error {
	cmd := d.cmd
	if cmd.At.Before(d.state.LastRunAt) {
		return fmt.Errorf("%w: run at %s is older than the run already applied at %s (send runs in the order they happened)",
			domain.ErrStaleRun, cmd.At.Format(time.RFC3339Nano), d.state.LastRunAt.Format(time.RFC3339Nano))
	}
	d.state.LastRunAt = cmd.At

	d.emit(domain.Event{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: cmd.RunnerStatus})
	for _, a := range cmd.Actions {
		d.emit(domain.Event{Type: domain.EventUptakeReported, Source: domain.ActionSource(a.Name), Status: a.Status})
	}
	for _, r := range cmd.Recipes {
		d.emit(domain.Event{Type: domain.EventUptakeReported, Source: domain.RecipeSource(r.ID), Status: r.Status})
	}
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return nil
	}

	seen := map[domain.StudyRef]bool{}
	if !d.state.StudiesDisabled {
		for _, r := range cmd.Recipes {
			study, ok := r.Study()
			if !ok || (r.Status != domain.RecipeSuccess && r.Status != domain.RecipeExecutionError) {
				continue
			}
			seen[study] = true
			if err := d.studyRecipe(ctx, r, study); err != nil {
				return fmt.Errorf("recipes: recipe %d: %w", r.ID, err)
			}
		}
	}
	return d.finalize(ctx, seen)
}

// studyRecipe applies one executed study recipe to its enrollment:
//
//   - enrolled: the study was seen; LastSeen moves, no event.
//   - unenrolled: nothing. There is no re-enrollment, ever, and an enroll for an ended
//     study is a no-op, not an error.
//   - none or enroll_failed: RECIPE_SUCCESS enrolls; an add-on study's
//     RECIPE_EXECUTION_ERROR with an installError is an enrollFailed; anything else
//     leaves the study untouched.
func (d *decider) studyRecipe(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) error {
	switch d.state.StateOf(study) {
	case domain.StateEnrolled:
		en, _ := d.state.Find(study)
		en.LastSeen = d.cmd.At
		d.put(en)
		return nil
	case domain.StateUnenrolled:
		return nil
	}
	switch {
	case study.Object == domain.PreferenceStudy && r.Status == domain.RecipeSuccess:
		return d.enrollPreference(ctx, r, study)
	case study.Object == domain.AddonStudy && r.Status == domain.RecipeSuccess:
		return d.enrollAddon(ctx, r, study)
	case study.Object == domain.AddonStudy && r.Status == domain.RecipeExecutionError && r.Arguments.InstallError != "":
		return d.enrollFailed(ctx, d.newEnrollment(r, study), r.Arguments.InstallError)
	}
	return nil
}

// newEnrollment is the record a study recipe starts: its study, slug and owning action.
func (d *decider) newEnrollment(r domain.RecipeReport, study domain.StudyRef) domain.Enrollment {
	return domain.Enrollment{Object: study.Object, Key: study.Key, Slug: r.Arguments.StudySlug(), Action: r.Action}
}

// enrollPreference enrolls a preference study. Its guard is Firefox's: a preference can
// belong to one enrolled preference study at a time. Firefox threw there, reporting
// RECIPE_EXECUTION_ERROR, so a run claiming success for such a recipe is refused.
func (d *decider) enrollPreference(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) error {
	a := r.Arguments
	err := d.enrolled(domain.PreferenceStudy, func(other domain.Enrollment) error {
		if other.Key != study.Key && other.Preference == a.PreferenceName {
			return fmt.Errorf("%w: preference study %q cannot enroll: preference %q belongs to enrolled study %q "+
				"(Firefox refuses and reports %s for this recipe)",
				domain.ErrIllegalTransition, study.Key, a.PreferenceName, other.Key, domain.RecipeExecutionError)
		}
		return nil
	})
	if err != nil {
		return err
	}
	branch, err := sampleBranch(domain.PreferenceBranchInput(d.state.Client, a.StudySlug()), a.Branches)
	if err != nil {
		return err
	}
	en := d.newEnrollment(r, study)
	en.Branch = branch
	en.ExperimentType = domain.ExperimentTypeFor(a.IsHighPopulation)
	en.Preference = a.PreferenceName
	return d.enroll(ctx, en)
}

// enrollAddon enrolls an add-on study with the add-on the client installed. A recipe
// without branches (the 2018 opt-out-study action) enrolls with no branch.
func (d *decider) enrollAddon(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) error {
	a := r.Arguments
	if a.AddonID == "" || a.AddonVersion == "" {
		return fmt.Errorf("%w: add-on study %q reports %s without the installed add-on "+
			"(give arguments.addonId and arguments.addonVersion, or installError with %s)",
			domain.ErrInvalid, study.Key, domain.RecipeSuccess, domain.RecipeExecutionError)
	}
	en := d.newEnrollment(r, study)
	if len(a.Branches) > 0 {
		branch, err := sampleBranch(domain.AddonBranchInput(d.state.Client, a.StudySlug()), a.Branches)
		if err != nil {
			return err
		}
		en.Branch = branch
	}
	en.AddonID, en.AddonVersion = a.AddonID, a.AddonVersion
	return d.enroll(ctx, en)
}

// sampleBranch picks the branch Firefox would pick for input.
func sampleBranch(input string, branches []domain.Branch) (string, error) {
	ratios := make([]uint64, len(branches))
	for i, b := range branches {
		ratios[i] = b.Ratio
	}
	i, err := domain.RatioSample(input, ratios)
	if err != nil {
		return "", fmt.Errorf("sample branch: %w", err)
	}
	return branches[i].Slug, nil
}

// finalize is each study action's postExecution: an action reported with
// ACTION_SUCCESS ends, with recipe-not-seen, every enrolled study it owns that this run
// did not see. An action not reported, or reported with an error status, did not run
// its postExecution cleanly, so it ends nothing; nor does an action that runs no study.
// Preference studies ask for their preference to be reset (didResetValue "true").
func (d *decider) finalize(ctx context.Context, seen map[domain.StudyRef]bool) error {
	for _, a := range d.cmd.Actions {
		if _, isStudy := domain.StudyObjectForAction(a.Name); !isStudy || a.Status != domain.ActionSuccess {
			continue
		}
		err := d.enrolled("", func(en domain.Enrollment) error {
			if en.Action != a.Name || seen[en.Study()] {
				return nil
			}
			return d.end(ctx, en, domain.ReasonRecipeNotSeen, true)
		})
		if err != nil {
			return fmt.Errorf("finalize %s: %w", a.Name, err)
		}
	}
	return nil
}
