package domain

import (
	"errors"
	"fmt"
	"slices"

	"github.com/studyd/studyd/recipe"
)

// Validate checks a command on its own, before any state is consulted: the common
// fields, the fields of its type, and that no field of another type is set. The error
// names the offending field and what would be accepted.
func (c Command) Validate() error {
	if _, err := ParseCommandType(string(c.Type)); err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.CommandID == "" {
		add(fmt.Errorf("%w: command_id is empty (a unique id per command is required)", ErrInvalid))
	} else if len(c.CommandID) > MaxCommandIDLen {
		add(fmt.Errorf("%w: command_id is %d bytes long (at most %d)", ErrInvalid, len(c.CommandID), MaxCommandIDLen))
	}
	add(c.ClientID.Validate())
	if _, err := ParseFirefoxVersion(c.FirefoxVersion); err != nil {
		add(err)
	}
	if c.At.IsZero() {
		add(fmt.Errorf("%w: at is missing (the time the client observed the command, RFC 3339)", ErrInvalid))
	} else if c.At.After(LatestRepresentable) || c.At.Year() < 1 {
		// Whatever the configured range, a time RFC 3339 cannot write would wedge every
		// reader that renders it.
		add(fmt.Errorf("%w: at %d-… cannot be written in RFC 3339 (years 0001 to 9999)", ErrInvalid, c.At.Year()))
	}
	add(c.validateTypeFields())
	return errors.Join(errs...)
}

// validateTypeFields checks the fields each type uses and rejects those it does not.
func (c Command) validateTypeFields() error {
	var errs []error
	unexpected := func(set bool, field string) {
		if set {
			errs = append(errs, fmt.Errorf("%w: %s is not a field of %s", ErrInvalid, field, c.Type))
		}
	}
	is := func(types ...CommandType) bool { return slices.Contains(types, c.Type) }
	unexpected(!is(CommandRecipeRun) && c.RunnerStatus != "", "runner_status")
	unexpected(!is(CommandRecipeRun) && len(c.Actions) > 0, "actions")
	unexpected(!is(CommandRecipeRun) && len(c.Recipes) > 0, "recipes")
	unexpected(!is(CommandOptOut) && c.StudiesEnabled, "studies_enabled")
	unexpected(!is(CommandStudyRemoved, CommandUnenroll, CommandRolloutGraduated) && c.Study != nil, "study")
	unexpected(!is(CommandUnenroll, CommandRolloutGraduated) && c.Reason != "", "reason")
	unexpected(!is(CommandAddonUninstalled) && c.AddonID != "", "addon_id")
	unexpected(!is(CommandPrefChanged) && c.Preference != "", "preference")
	unexpected(!is(CommandAddonUninstalled, CommandPrefChanged) && c.Sideload, "sideload")

	switch c.Type {
	case CommandRecipeRun:
		errs = append(errs, c.validateRun())
	case CommandStudyRemoved, CommandUnenroll:
		if c.Study == nil {
			errs = append(errs, fmt.Errorf("%w: study is missing (an object and a key)", ErrInvalid))
			break
		}
		errs = append(errs, c.Study.Validate())
		if c.Study.Validate() != nil {
			break
		}
		if c.Study.Object == PreferenceRollout {
			errs = append(errs, fmt.Errorf("%w: study.object %s: a rollout ends by a preference-rollback recipe, not by %s", ErrInvalid, PreferenceRollout, c.Type))
			break
		}
		if c.Type == CommandUnenroll && c.Reason != "" {
			_, err := ParseReason(c.Study.Object, string(c.Reason))
			errs = append(errs, err)
			if err == nil {
				errs = append(errs, ReasonSentBy(c.Study.Object, c.Reason, c.Version()))
			}
		}
	case CommandRolloutGraduated:
		if c.Study == nil || c.Study.Object != PreferenceRollout {
			errs = append(errs, fmt.Errorf("%w: study is missing or not a %s (an object and the rollout's slug)", ErrInvalid, PreferenceRollout))
			break
		}
		errs = append(errs, c.Study.Validate())
		if c.Reason != "" {
			_, err := ParseReason(PreferenceRollout, string(c.Reason))
			errs = append(errs, err)
		}
		if v := c.Version(); v != 0 && !v.Has(RulePreferenceRollouts) {
			errs = append(errs, fmt.Errorf("%w: Firefox %s had no preference rollouts (rule %s: Firefox %s)", ErrInvalid, v,
				RulePreferenceRollouts, RuleFor(RulePreferenceRollouts).Versions()))
		}
	case CommandAddonUninstalled:
		errs = append(errs, validateText("addon_id", c.AddonID, true))
	case CommandPrefChanged:
		errs = append(errs, validateText("preference", c.Preference, true))
	}
	return errors.Join(errs...)
}

// validateRun checks a recipe_run: statuses from the right sets, unique actions and
// recipes, and that a run whose fetch failed reports no actions or recipes.
func (c Command) validateRun() error {
	if c.RunnerStatus == "" {
		return fmt.Errorf("%w: runner_status is missing (allowed: %v)", ErrInvalid, RunnerStatuses)
	}
	if _, err := ParseRunnerStatus(string(c.RunnerStatus)); err != nil {
		return err
	}
	v := c.Version()
	if err := c.RunnerStatus.SentBy(v); err != nil {
		return fmt.Errorf("runner_status: %w", err)
	}
	if len(c.Actions) > MaxActionsPerRun {
		return fmt.Errorf("%w: %d actions in one run (at most %d)", ErrInvalid, len(c.Actions), MaxActionsPerRun)
	}
	if len(c.Recipes) > MaxRecipesPerRun {
		return fmt.Errorf("%w: %d recipes in one run (at most %d)", ErrInvalid, len(c.Recipes), MaxRecipesPerRun)
	}
	if c.RunnerStatus != RunnerSuccess && (len(c.Actions) > 0 || len(c.Recipes) > 0) {
		return fmt.Errorf("%w: runner_status %s means the recipes were not fetched, so the run can report no actions or recipes",
			ErrInvalid, c.RunnerStatus)
	}
	var errs []error
	seenActions := map[string]bool{}
	for i, a := range c.Actions {
		if err := ValidateToken(fmt.Sprintf("actions[%d].name", i), a.Name); err != nil {
			errs = append(errs, err)
		} else if seenActions[a.Name] {
			errs = append(errs, fmt.Errorf("%w: actions[%d]: action %q is reported twice", ErrInvalid, i, a.Name))
		}
		seenActions[a.Name] = true
		if _, err := ParseActionStatus(string(a.Status)); err != nil {
			errs = append(errs, fmt.Errorf("actions[%d]: %w", i, err))
		} else if err := a.Status.SentBy(v); err != nil {
			errs = append(errs, fmt.Errorf("actions[%d]: %w", i, err))
		}
	}
	seenRecipes := map[RecipeID]bool{}
	for i, r := range c.Recipes {
		if seenRecipes[r.ID] {
			errs = append(errs, fmt.Errorf("%w: recipes[%d]: recipe %d is reported twice", ErrInvalid, i, r.ID))
		}
		seenRecipes[r.ID] = true
		if err := r.validate(v); err != nil {
			errs = append(errs, fmt.Errorf("recipes[%d]: %w", i, err))
		} else if err := r.Status.SentBy(v); r.Status != "" && err != nil {
			errs = append(errs, fmt.Errorf("recipes[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validate checks one recipe report's own fields: its action, its status and that its
// arguments are within bounds. The arguments' content is the recipe's data: it is
// checked per recipe when the recipe is decided (StudyArguments), and a problem there
// skips that recipe, never the run.
//
// A recipe without a status is one that matched, reported by current Firefox (which
// sends no uptake for it); an earlier or unversioned client must give its status.
func (r RecipeReport) validate(v FirefoxVersion) error {
	if err := ValidateToken("action", r.Action); err != nil {
		return err
	}
	if r.Status == "" && v != 0 && !v.Has(RuleExecutionUptake) {
		// matched, no uptake
	} else if r.Status == "" {
		return fmt.Errorf("%w: status is missing (Firefox %s reported one for every recipe; only Firefox %d and later report a matching recipe without one)",
			ErrInvalid, v, EraCurrent)
	} else if _, err := ParseRecipeStatus(string(r.Status)); err != nil {
		return err
	}
	if len(r.Arguments) > recipe.MaxArgumentsLen {
		return fmt.Errorf("%w: arguments are %d bytes of JSON (at most %d)", ErrInvalid, len(r.Arguments), recipe.MaxArgumentsLen)
	}
	return nil
}

// StudyArguments reads and checks the arguments of a study recipe that studyd uses:
// the slug (or the 2018 add-on study's name), the branches and their ratios, a
// preference study's preference (preferenceName, or one preference per branch of a
// multi-preference-experiment) with its type and branch type, and an add-on study's
// install outcome. Other fields are not read. An error means the recipe is unusable:
// Firefox would have thrown or skipped it, so studyd skips it alone.
func (r RecipeReport) StudyArguments() (recipe.Study, error) { return r.StudyArgumentsFor(0) }

// StudyArgumentsFor is StudyArguments by the rules of Firefox v: from the
// multi-preference-experiment rule on, a branch may set several preferences.
func (r RecipeReport) StudyArgumentsFor(v FirefoxVersion) (recipe.Study, error) {
	obj, isStudy := StudyObjectForAction(r.Action)
	if !isStudy {
		return recipe.Study{}, fmt.Errorf("%w: action %s runs no study", ErrInvalid, r.Action)
	}
	a, err := ReadArguments(r.Arguments)
	if err != nil {
		return a, err
	}
	var errs []error
	if a.Slug != "" && a.Name != "" && a.Slug != a.Name {
		errs = append(errs, fmt.Errorf("%w: arguments.slug %q and arguments.name %q differ (give one)", ErrInvalid, a.Slug, a.Name))
	}
	errs = append(errs, ValidateToken("arguments.slug", a.StudySlug()))
	if len(a.Branches) > MaxBranches {
		errs = append(errs, fmt.Errorf("%w: %d branches (at most %d)", ErrInvalid, len(a.Branches), MaxBranches))
	}
	var total uint64
	seen := map[string]bool{}
	for j, b := range a.Branches {
		if err := ValidateToken(fmt.Sprintf("arguments.branches[%d].slug", j), b.Slug); err != nil {
			errs = append(errs, err)
		} else if seen[b.Slug] {
			errs = append(errs, fmt.Errorf("%w: arguments.branches[%d]: branch %q appears twice", ErrInvalid, j, b.Slug))
		}
		seen[b.Slug] = true
		if total+b.Ratio < total {
			errs = append(errs, fmt.Errorf("%w: arguments.branches: ratios overflow", ErrInvalid))
		}
		total += b.Ratio
	}
	if len(a.Branches) > 0 && total == 0 {
		errs = append(errs, fmt.Errorf("%w: arguments.branches: ratios add up to 0", ErrInvalid))
	}
	switch obj {
	case PreferenceStudy:
		if a.EnrollError != "" && !slices.Contains(PrefEnrollFailedReasons, a.EnrollError) {
			errs = append(errs, fmt.Errorf("%w: arguments.enrollError %q (allowed: %v)", ErrInvalid, a.EnrollError, PrefEnrollFailedReasons))
		}
		if len(a.Branches) == 0 {
			errs = append(errs, fmt.Errorf("%w: arguments.branches is empty (a preference study needs at least one branch)", ErrInvalid))
		}
		if a.PreferenceName != "" {
			errs = append(errs, validateText("arguments.preferenceName", a.PreferenceName, true),
				fromRecipe(recipe.CheckPreferenceTypes("arguments", a.PreferenceType, a.PreferenceBranchType)))
			break
		}
		for j, b := range a.Branches {
			if len(b.Preferences) != 1 && !(v.Has(RuleMultiPreference) && len(b.Preferences) > 1) {
				errs = append(errs, fmt.Errorf("%w: arguments.preferenceName is missing and arguments.branches[%d] sets %d preferences "+
					"(studyd keeps one preference per preference study)", ErrInvalid, j, len(b.Preferences)))
				continue
			}
			for name, p := range b.Preferences {
				field := fmt.Sprintf("arguments.branches[%d].preferences", j)
				errs = append(errs, validateText(field+" name", name, true),
					fromRecipe(recipe.CheckPreferenceTypes(field+"."+name, p.PreferenceType, p.PreferenceBranchType)))
			}
		}
	case AddonStudy:
		errs = append(errs, validateText("arguments.updateError", a.UpdateError, false))
		errs = append(errs, validateText("arguments.addonId", a.AddonID, false),
			validateText("arguments.addonVersion", a.AddonVersion, false),
			validateText("arguments.installError", a.InstallError, false))
		if len(a.InstallError) > MaxEnrollFailedReason {
			errs = append(errs, fmt.Errorf("%w: arguments.installError is %d bytes (at most %d)", ErrInvalid, len(a.InstallError), MaxEnrollFailedReason))
		}
	}
	return a, errors.Join(errs...)
}

// ReadArguments reads the fields of a recipe's arguments that studyd uses
// (recipe.Arguments.Study); a failure is an ErrInvalid.
func ReadArguments(a recipe.Arguments) (recipe.Study, error) {
	s, err := a.Study()
	return s, fromRecipe(err)
}

// fromRecipe makes a failed check of the recipe package an ErrInvalid, in its words.
func fromRecipe(err error) error {
	if err == nil || !errors.Is(err, recipe.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// validateText checks a free-text field: present if required, bounded, printable.
func validateText(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return fmt.Errorf("%w: %s is missing", ErrInvalid, field)
	case len(v) > MaxFieldLen && field != "arguments.installError":
		return fmt.Errorf("%w: %s is %d bytes long (at most %d)", ErrInvalid, field, len(v), MaxFieldLen)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("%w: %s has a control or invalid character %q", ErrInvalid, field, r)
		}
	}
	return nil
}
