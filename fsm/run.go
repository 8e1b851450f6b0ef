package fsm

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
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
		if r.Status == "" {
			recipeEvent[i] = -1 // current Firefox sent no uptake for a matching recipe
			continue
		}
		recipeEvent[i] = len(d.events)
		d.emit(domain.Event{Type: domain.EventUptakeReported, Source: domain.RecipeSource(r.ID), Status: r.Status,
			Action: r.Action, Arguments: domain.JSONText(r.Arguments)})
	}
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return nil
	}

	seen := map[domain.StudyRef]bool{}
	for i, r := range cmd.Recipes {
		var skip string
		var err error
		if r.Status == "" {
			r.Status = outcomeOf(r)
		}
		if _, isRollout := domain.RolloutObjectForAction(r.Action); isRollout {
			// Rollout actions are not study actions: the studies opt-out does not stop
			// them. The seed has no rollouts, so an unversioned run only records their
			// uptake.
			if d.version != 0 && d.version.Has(domain.RulePreferenceRollouts) && executed(r.Status) {
				skip, err = d.rolloutRecipe(ctx, r)
			}
		} else if study, ok := r.Study(); ok && !d.state.StudiesDisabled {
			switch {
			case executed(r.Status):
				if study.Key != "" {
					seen[study] = true // the actions noted the study seen before anything else
				}
				skip, err = d.studyRecipe(ctx, r, study)
			case unsuited(d.version, r.Status):
				if study.Key != "" {
					seen[study] = true // later actions see every recipe, whatever its suitability
				}
				err = d.unsuitedRecipe(ctx, r, study)
			}
		}
		if err != nil {
			return fmt.Errorf("recipes: recipe %d: %w", r.ID, err)
		}
		if recipeEvent[i] >= 0 {
			d.events[recipeEvent[i]].Skipped = skip
		}
	}
	return d.finalize(ctx, seen)
}

// outcomeOf is what a matching recipe that current Firefox reported without a status
// did: the outcome the client added to its arguments (an installError, enrollError or
// updateError is a failure, as RECIPE_EXECUTION_ERROR was), else success.
func outcomeOf(r domain.RecipeReport) domain.UptakeStatus {
	a, _ := r.Arguments.Study()
	if a.InstallError != "" || a.EnrollError != "" || a.UpdateError != "" {
		return domain.RecipeExecutionError
	}
	return domain.RecipeSuccess
}

// executed reports whether a recipe's status says its action ran it: the filter matched
// and the action was there to run it.
func executed(s domain.UptakeStatus) bool {
	return s == domain.RecipeSuccess || s == domain.RecipeExecutionError
}

// unsuited reports whether status is a suitability that Firefox v passes to the study
// actions (later Firefox): a filter that did not match or threw, capabilities the
// client lacks, a bad signature. Earlier clients never executed such recipes.
func unsuited(v domain.FirefoxVersion, s domain.UptakeStatus) bool {
	switch s {
	case domain.RecipeDidntMatchFilter, domain.RecipeIncompatibleCapabilities:
		return v.Has(domain.RuleSuitabilityUnenroll)
	case domain.RecipeFilterBroken, domain.RecipeInvalidSignature:
		return v.Has(domain.RuleTemporaryErrorDeadline)
	}
	return false
}

// unsuitedRecipe applies a recipe that no longer suits the client to its enrolled
// study, as later Firefox's study actions did: a filter mismatch or missing capability
// ends it at once (filter-mismatch, capability-mismatch); a bad signature or a broken
// filter is temporary and ends it only after the deadline (signature-error,
// filter-error). A study the client is not enrolled in is untouched.
func (d *decider) unsuitedRecipe(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) error {
	en, ok := d.state.Find(study)
	if !ok || en.State != domain.StateEnrolled {
		return nil
	}
	switch r.Status {
	case domain.RecipeDidntMatchFilter:
		return d.end(ctx, en, domain.ReasonFilterMismatch, true)
	case domain.RecipeIncompatibleCapabilities:
		return d.end(ctx, en, domain.ReasonCapabilityMismatch, true)
	case domain.RecipeInvalidSignature:
		return d.temporaryError(ctx, en, domain.ReasonSignatureError)
	default: // RECIPE_FILTER_BROKEN
		return d.temporaryError(ctx, en, domain.ReasonFilterError)
	}
}

// TemporaryErrorGrace is how long later Firefox keeps a study whose recipe fails
// temporarily before it unenrolls it.
const TemporaryErrorGrace = 7 * 24 * time.Hour

// temporaryError is later Firefox's deadline for a temporary error of an enrolled
// study: the first error sets the deadline a week on (no event); an error after the
// deadline ends the study with reason; one before it changes nothing.
func (d *decider) temporaryError(ctx context.Context, en domain.Enrollment, reason domain.Reason) error {
	switch {
	case en.TemporaryErrorDeadline.IsZero():
		en.TemporaryErrorDeadline = d.cmd.At.Add(TemporaryErrorGrace)
		d.put(en)
	case d.cmd.At.After(en.TemporaryErrorDeadline):
		return d.end(ctx, en, reason, true)
	}
	return nil
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
	v := d.version
	switch d.state.StateOf(study) {
	case domain.StateEnrolled:
		en, _ := d.state.Find(study)
		en.LastSeen = d.cmd.At
		en.TemporaryErrorDeadline = time.Time{} // a matching recipe clears the deadline (later Firefox)
		d.put(en)
		if !v.Has(domain.RuleSuitabilityUnenroll) || v == 0 {
			return "", nil
		}
		a, err := r.StudyArgumentsFor(v)
		if err != nil {
			return "", d.end(ctx, en, domain.ReasonArgumentsInvalid, true)
		}
		if v.Has(domain.RuleBranchedAddon) && r.Action == branchedAddonAction && en.Object == domain.AddonStudy {
			return d.branchedAddonSeen(ctx, r, a, en)
		}
		return "", nil
	case domain.StateUnenrolled:
		return "", nil
	}
	if study.Object == domain.PreferenceStudy && r.Status == domain.RecipeExecutionError {
		if skip, done, err := d.prefEnrollError(ctx, r, study); done {
			return skip, err
		}
	}
	a, err := r.StudyArgumentsFor(v)
	if err != nil {
		return "unusable arguments: " + err.Error(), nil
	}
	if study.Object == domain.PreferenceStudy && r.Status == domain.RecipeSuccess {
		for _, pref := range a.Preferences() {
			var conflict string
			_ = d.enrolled(domain.PreferenceStudy, func(other domain.Enrollment) error {
				if conflict == "" && other.Key != study.Key && other.Uses(pref) {
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
	branchedControl := false
	if study.Object == domain.AddonStudy && v.Has(domain.RuleBranchedAddon) && v != 0 && r.Action == branchedAddonAction && len(a.Branches) > 0 {
		branch, err := sampleBranch(domain.AddonBranchInput(d.state.Client, a.StudySlug()), a.Branches)
		if err != nil {
			return "", err
		}
		for _, b := range a.Branches {
			if b.Slug == branch && !b.HasAddon() {
				branchedControl = true
			}
		}
	}
	switch {
	case study.Object == domain.PreferenceStudy && r.Status == domain.RecipeSuccess:
		return "", d.enrollPreference(ctx, r, a, study)
	case study.Object == domain.AddonStudy && r.Status == domain.RecipeSuccess && branchedControl:
		// Later Firefox's branched-addon-study: a branch without an add-on enrolls with
		// nothing installed (__NO_ADDON__ in its telemetry).
		a.AddonID, a.AddonVersion = "", ""
		return "", d.enrollAddon(ctx, r, a, study)
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

// branchedAddonAction is later Firefox's add-on study action.
const branchedAddonAction = "branched-addon-study"

// prefEnrollError decides a preference study recipe that failed to start with the
// enrollError the client added (Firefox 65 and later sent enrollFailed for preference
// studies: name-conflict, pref-conflict, experiment-type-too-long, invalid-branch with
// prefBranch, invalid-type). It is read before the rest of the arguments, which may be
// wrong in exactly the way the error says. done is false when there is no enrollError.
func (d *decider) prefEnrollError(ctx context.Context, r domain.RecipeReport, study domain.StudyRef) (skip string, done bool, err error) {
	a, _ := r.Arguments.Study()
	if a.EnrollError == "" {
		return "", false, nil
	}
	if d.version == 0 || !d.version.Has(domain.RulePrefStudyEnrollFailed) {
		return fmt.Sprintf("enrollError %q: Firefox %s sent no enrollFailed for preference studies (rule %s: Firefox %s)",
			a.EnrollError, d.version, domain.RulePrefStudyEnrollFailed, domain.RuleFor(domain.RulePrefStudyEnrollFailed).Versions()), true, nil
	}
	if !slices.Contains(domain.PrefEnrollFailedReasons, a.EnrollError) {
		return fmt.Sprintf("unusable arguments: enrollError %q (allowed: %v)", a.EnrollError, domain.PrefEnrollFailedReasons), true, nil
	}
	if err := domain.ValidateToken("arguments.slug", a.StudySlug()); err != nil {
		return "unusable arguments: " + err.Error(), true, nil
	}
	ev := domain.Event{}
	if a.EnrollError == "invalid-branch" {
		ev.PreferenceBranchType = domain.Truncate(a.PreferenceBranchType, domain.MaxTelemetryString)
	}
	return "", true, d.enrollFailed(ctx, d.newEnrollment(r, a, study), a.EnrollError, ev)
}

// branchedAddonSeen applies a later branched-addon-study recipe to its enrolled study:
// a branch no longer in the recipe ends it (branch-removed); an updateError the client
// added is updateFailed; a new add-on version installed is update.
func (d *decider) branchedAddonSeen(ctx context.Context, r domain.RecipeReport, a recipe.Study, en domain.Enrollment) (string, error) {
	if en.Branch != "" && !slices.ContainsFunc(a.Branches, func(b recipe.Branch) bool { return b.Slug == en.Branch }) {
		return "", d.end(ctx, en, domain.ReasonBranchRemoved, true)
	}
	switch {
	case r.Status == domain.RecipeExecutionError && a.UpdateError != "":
		return "", d.transition(ctx, en, domain.Event{Type: domain.EventUpdateFailed, Slug: en.Slug, EnrollmentID: en.EnrollmentID,
			Branch: en.Branch, AddonID: en.AddonID, AddonVersion: en.AddonVersion, Reason: a.UpdateError})
	case r.Status == domain.RecipeSuccess && a.AddonVersion != "" && en.AddonID != "" &&
		(a.AddonVersion != en.AddonVersion || (a.AddonID != "" && a.AddonID != en.AddonID)):
		if a.AddonID != "" && a.AddonID != en.AddonID {
			return fmt.Sprintf("update to add-on %q: the study installed %q (Firefox sends updateFailed addon-id-mismatch: report it as updateError)",
				a.AddonID, en.AddonID), nil
		}
		en.AddonVersion = a.AddonVersion
		return "", d.transition(ctx, en, domain.Event{Type: domain.EventUpdated, Slug: en.Slug, EnrollmentID: en.EnrollmentID,
			Branch: en.Branch, AddonID: en.AddonID, AddonVersion: en.AddonVersion})
	}
	return "", nil
}

// newEnrollment is the record a study recipe starts: its study, slug and owning action.
func (d *decider) newEnrollment(r domain.RecipeReport, a recipe.Study, study domain.StudyRef) domain.Enrollment {
	return domain.Enrollment{Object: study.Object, Key: study.Key, Slug: a.StudySlug(), Action: r.Action}
}

// enrollPreference enrolls a preference study (its conflicts already checked) with the
// branch Firefox would pick and what Firefox kept of it: the preference, its type,
// branch type and the branch's value.
func (d *decider) enrollPreference(ctx context.Context, r domain.RecipeReport, a recipe.Study, study domain.StudyRef) error {
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
	if prefs := a.BranchPreferences(branch); len(prefs) > 1 {
		// A multi-preference-experiment branch: every preference it sets is the
		// study's, and its value is the branch's preferences object.
		en.Preferences = prefs
		en.Preference, en.PreferenceType, en.PreferenceBranchType = prefs[0], "", ""
		en.BranchValue = domain.JSONText(a.BranchPreferencesJSON(branch))
	}
	return d.enroll(ctx, en)
}

// enrollAddon enrolls an add-on study with the add-on the client installed. A recipe
// without branches (the 2018 opt-out-study action) enrolls with no branch.
func (d *decider) enrollAddon(ctx context.Context, r domain.RecipeReport, a recipe.Study, study domain.StudyRef) error {
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
func sampleBranch(input string, branches []recipe.Branch) (string, error) {
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
//
// Later Firefox (the temporary-error deadline rule): a run that fetched no recipes at
// all puts every unseen study on the deadline with no-recipes instead; and (the
// preference-study opt-out rule) a study action disabled by the opt-out finalizes
// nothing.
func (d *decider) finalize(ctx context.Context, seen map[domain.StudyRef]bool) error {
	v := d.version
	if d.state.StudiesDisabled && v.Has(domain.RulePrefStudyOptOut) && v != 0 {
		return nil
	}
	noRecipes := v != 0 && v.Has(domain.RuleTemporaryErrorDeadline) && len(d.cmd.Recipes) == 0
	if v != 0 && !v.Has(domain.RuleExecutionUptake) {
		// Current Firefox reports no action statuses: every study action finalizes.
		return d.enrolled("", func(en domain.Enrollment) error {
			if seen[en.Study()] {
				return nil
			}
			if noRecipes {
				return d.temporaryError(ctx, en, domain.ReasonNoRecipes)
			}
			return d.end(ctx, en, domain.ReasonRecipeNotSeen, true)
		})
	}
	for _, a := range d.cmd.Actions {
		if _, isStudy := domain.StudyObjectForAction(a.Name); !isStudy || a.Status != domain.ActionSuccess {
			continue
		}
		err := d.enrolled("", func(en domain.Enrollment) error {
			if en.Action != a.Name || seen[en.Study()] {
				return nil
			}
			if noRecipes {
				return d.temporaryError(ctx, en, domain.ReasonNoRecipes)
			}
			return d.end(ctx, en, domain.ReasonRecipeNotSeen, true)
		})
		if err != nil {
			return fmt.Errorf("finalize %s: %w", a.Name, err)
		}
	}
	return nil
}
