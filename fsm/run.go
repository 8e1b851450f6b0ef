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
	recipeEvent := make([]int, len(cmd.Recipes)) // each recipe's uptake event, where a skip is noted
	for i, r := range cmd.Recipes {
		recipeEvent[i] = len(d.events)
		d.emit(domain.Event{Type: domain.EventUptakeReported, Source: domain.RecipeSource(r.ID), Status: r.Status,
			Action: r.Action, Arguments: domain.JSONText(r.Arguments)})
	}
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return nil
	}

	seen := map[domain.StudyRef]bool{}
	if !d.state.StudiesDisabled {
		for i, r := range cmd.Recipes {
			study, ok := r.Study()
			if !ok || (r.Status != domain.RecipeSuccess && r.Status != domain.RecipeExecutionError) {
				continue
			}
			if study.Key != "" {
				seen[study] = true // the 2018 actions noted the study seen before anything else
			}
			skip, err := d.studyRecipe(ctx, r, study)
			if err != nil {
				return fmt.Errorf("recipes: recipe %d: %w", r.ID, err)
			}
			d.events[recipeEvent[i]].Skipped = skip
		}
	}
	return d.finalize(ctx, seen)
}

// studyRecipe applies one executed study recipe to its enrollment, as the 2018 actions
// did, and returns why it decided nothing when that is worth an audit's note. A
// recipe's problem is the recipe's own: it is skipped, never the run.
//
//   - enrolled: the study was seen; LastSeen moves, no event (whatever else the recipe
//     says: Firefox only bumped lastSeen).
//   - unenrolled: nothing. There is no re-enrollment, ever, and an enroll for an ended
//     study is a no-op, not an error.
//   - none or enroll_failed, arguments studyd cannot use: skipped.
//   - preference study, RECIPE_SUCCESS: another enrolled preference study using the
//     preference skips it (Firefox logged a warning and returned, so the recipe still
//     reported RECIPE_SUCCESS); isEnrollmentPaused skips it; otherwise it enrolls.
//   - add-on study: isEnrollmentPaused skips it; RECIPE_SUCCESS with the installed
//     add-on enrolls; RECIPE_EXECUTION_ERROR with an installError is an enrollFailed.
//   - anything else leaves the study untouched.
func (d *decider) studyRecipe(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) (string, error) {
	switch d.state.StateOf(study) {
	case domain.StateEnrolled:
		en, _ := d.state.Find(study)
		en.LastSeen = d.cmd.At
		d.put(en)
		return "", nil
	case domain.StateUnenrolled:
		return "", nil
	}
	a, err := r.StudyArguments()
	if err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	if study.Object == domain.PreferenceStudy && r.Status == domain.RecipeSuccess {
		for _, pref := range a.Preferences() {
			var conflict string
			_ = d.enrolled(domain.PreferenceStudy, func(other domain.Enrollment) error {
				if conflict == "" && other.Key != study.Key && other.Preference == pref {
					conflict = other.Key
				}
				return nil
			})
			if conflict != "" {
				return fmt.Sprintf("pref-conflict: preference %q belongs to enrolled study %q", pref, conflict), nil
			}
		}
	}
	if a.IsEnrollmentPaused {
		return "isEnrollmentPaused: no new enrollment", nil
	}
	switch {
	case study.Object == domain.PreferenceStudy && r.Status == domain.RecipeSuccess:
		return "", d.enrollPreference(ctx, r, a, study)
	case study.Object == domain.AddonStudy && r.Status == domain.RecipeSuccess:
		if a.AddonID == "" || a.AddonVersion == "" || a.InstallError != "" {
			return fmt.Sprintf("%s without the installed add-on: arguments.addonId and addonVersion are needed "+
				"(and no installError)", domain.RecipeSuccess), nil
		}
		return "", d.enrollAddon(ctx, r, a, study)
	case study.Object == domain.AddonStudy && r.Status == domain.RecipeExecutionError && a.InstallError != "":
		if a.AddonID != "" || a.AddonVersion != "" {
			return "installError with an installed add-on: give one", nil
		}
		return "", d.enrollFailed(ctx, d.newEnrollment(r, a, study), a.InstallError)
	}
	return "", nil
}

// newEnrollment is the record a study recipe starts: its study, slug and owning action.
func (d *decider) newEnrollment(r domain.RecipeReport, a domain.StudyArguments, study domain.StudyRef) domain.Enrollment {
	return domain.Enrollment{Object: study.Object, Key: study.Key, Slug: a.StudySlug(), Action: r.Action}
}

// enrollPreference enrolls a preference study (its conflicts already checked) with the
// branch Firefox would pick and what Firefox kept of it: the preference, its type,
// branch type and the branch's value.
func (d *decider) enrollPreference(ctx context.Context, r domain.RecipeReport, a domain.StudyArguments, study domain.StudyRef) error {
	branch, err := sampleBranch(domain.PreferenceBranchInput(d.state.Client, a.StudySlug()), a.Branches)
	if err != nil {
		return err
	}
	en := d.newEnrollment(r, a, study)
	en.Branch, en.Ratios = branch, a.Ratios()
	en.ExperimentType = domain.ExperimentTypeFor(a.IsHighPopulation)
	var value []byte
	en.Preference, en.PreferenceType, en.PreferenceBranchType, value = a.BranchPreference(branch)
	en.BranchValue = domain.JSONText(value)
	return d.enroll(ctx, en)
}

// enrollAddon enrolls an add-on study with the add-on the client installed. A recipe
// without branches (the 2018 opt-out-study action) enrolls with no branch.
func (d *decider) enrollAddon(ctx context.Context, r domain.RecipeReport, a domain.StudyArguments, study domain.StudyRef) error {
	en := d.newEnrollment(r, a, study)
	en.Ratios = a.Ratios()
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
