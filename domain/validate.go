package domain

import (
	"errors"
	"fmt"
	"slices"
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
	unexpected(!is(CommandStudyRemoved, CommandUnenroll) && c.Study != nil, "study")
	unexpected(!is(CommandUnenroll) && c.Reason != "", "reason")
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
		if c.Type == CommandUnenroll && c.Reason != "" && c.Study.Validate() == nil {
			_, err := ParseReason(c.Study.Object, string(c.Reason))
			errs = append(errs, err)
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
		}
	}
	seenRecipes := map[RecipeID]bool{}
	for i, r := range c.Recipes {
		if seenRecipes[r.ID] {
			errs = append(errs, fmt.Errorf("%w: recipes[%d]: recipe %d is reported twice", ErrInvalid, i, r.ID))
		}
		seenRecipes[r.ID] = true
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("recipes[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validate checks one recipe report, and for a study recipe the arguments its action needs.
func (r RecipeReport) validate() error {
	if err := ValidateToken("action", r.Action); err != nil {
		return err
	}
	if _, err := ParseRecipeStatus(string(r.Status)); err != nil {
		return err
	}
	obj, isStudy := StudyObjectForAction(r.Action)
	if !isStudy {
		return nil
	}
	a := r.Arguments
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
		total += b.Ratio
	}
	if len(a.Branches) > 0 && total == 0 {
		errs = append(errs, fmt.Errorf("%w: arguments.branches: ratios add up to 0", ErrInvalid))
	}
	switch obj {
	case PreferenceStudy:
		if len(a.Branches) == 0 {
			errs = append(errs, fmt.Errorf("%w: arguments.branches is empty (a preference study needs at least one branch)", ErrInvalid))
		}
		errs = append(errs, validateText("arguments.preferenceName", a.PreferenceName, true))
		if a.AddonID != "" || a.AddonVersion != "" || a.InstallError != "" {
			errs = append(errs, fmt.Errorf("%w: arguments.addonId, addonVersion and installError belong to add-on studies", ErrInvalid))
		}
	case AddonStudy:
		errs = append(errs, r.validateInstall())
	}
	return errors.Join(errs...)
}

// validateInstall checks that an add-on study recipe reports an outcome that fits its
// status: an installed add-on (id and version) on success, an install error with
// RECIPE_EXECUTION_ERROR, and neither when the recipe did not execute.
func (r RecipeReport) validateInstall() error {
	a := r.Arguments
	installed := a.AddonID != "" || a.AddonVersion != ""
	if err := validateText("arguments.installError", a.InstallError, false); err != nil {
		return err
	}
	if len(a.InstallError) > MaxEnrollFailedReason {
		return fmt.Errorf("%w: arguments.installError is %d bytes (at most %d)", ErrInvalid, len(a.InstallError), MaxEnrollFailedReason)
	}
	switch {
	case installed && a.InstallError != "":
		return fmt.Errorf("%w: arguments carry both an installed add-on and installError (give one)", ErrInvalid)
	case installed:
		if err := errors.Join(validateText("arguments.addonId", a.AddonID, true),
			validateText("arguments.addonVersion", a.AddonVersion, true)); err != nil {
			return err
		}
		if r.Status != RecipeSuccess {
			return fmt.Errorf("%w: an installed add-on is reported with status %s (want %s)", ErrInvalid, r.Status, RecipeSuccess)
		}
	case a.InstallError != "":
		if r.Status != RecipeExecutionError {
			return fmt.Errorf("%w: installError is reported with status %s (want %s)", ErrInvalid, r.Status, RecipeExecutionError)
		}
	}
	return nil
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
