package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// FirefoxVersion is the major version of the Firefox that sent a command (62 for
// "62.0.3"). Zero means the command did not say: it is decided by the seed's 2018 rules.
type FirefoxVersion uint16

// MaxFirefoxVersion bounds the versions a command may name: a bound on typos, not a
// prediction.
const MaxFirefoxVersion = 999

// ParseFirefoxVersion reads a Firefox version string: a major version, optionally
// followed by ".minor", ".patch" and a suffix such as "esr", "a1" or "b3" ("62",
// "62.0.3", "115.0esr", "128.0b3"). Only the major version decides rules. "" is 0.
func ParseFirefoxVersion(v string) (FirefoxVersion, error) {
	if v == "" {
		return 0, nil
	}
	major, rest, _ := strings.Cut(v, ".")
	n, err := strconv.ParseUint(major, 10, 16)
	if err != nil || n == 0 || n > MaxFirefoxVersion || len(v) > 32 {
		return 0, fmt.Errorf("%w: firefox_version %q is not a Firefox version (want e.g. \"62.0.3\" or \"115.0esr\": a major version 1..%d, then optional .minor.patch and suffix)",
			ErrInvalid, v, MaxFirefoxVersion)
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || c == '.') {
			return 0, fmt.Errorf("%w: firefox_version %q has %q after the major version (allowed: 0-9 a-z .)", ErrInvalid, v, c)
		}
	}
	return FirefoxVersion(n), nil
}

// String is the major version, or "unversioned" for 0.
func (v FirefoxVersion) String() string {
	if v == 0 {
		return "unversioned"
	}
	return strconv.Itoa(int(v))
}

// RuleID names one versioned decision or telemetry rule.
type RuleID string

// The versioned rules. Rule holds each one's version range and source.
const (
	// RuleSeedOnlyStatuses: the 2018 runner's RUNNER_NETWORK_ERROR, RUNNER_INVALID_SIGNATURE,
	// ACTION_NETWORK_ERROR, ACTION_SERVER_ERROR and RECIPE_INVALID_ACTION, which the local
	// actions no longer sent.
	RuleSeedOnlyStatuses RuleID = "seed-only-statuses"
	// RuleExecutionUptake: uptake of execution: the action statuses, and RECIPE_SUCCESS,
	// RECIPE_EXECUTION_ERROR and RECIPE_ACTION_DISABLED. Current Firefox reports only
	// the runner and the recipes that did not suit; a matching recipe has no status.
	RuleExecutionUptake RuleID = "execution-uptake"
	// RuleFilterStatuses: RECIPE_DIDNT_MATCH_FILTER and RECIPE_FILTER_BROKEN.
	RuleFilterStatuses RuleID = "filter-statuses"
	// RuleSuitabilityStatuses: RECIPE_INCOMPATIBLE_CAPABILITIES and RECIPE_INVALID_SIGNATURE.
	RuleSuitabilityStatuses RuleID = "suitability-statuses"
	// RuleSuitabilityUnenroll: a study whose recipe no longer suits the client is seen
	// and ends at once: filter-mismatch, capability-mismatch, arguments-invalid.
	RuleSuitabilityUnenroll RuleID = "suitability-unenroll"
	// RuleTemporaryErrorDeadline: signature-error, filter-error and no-recipes end a
	// study only after its recipe failed temporarily for 7 days.
	RuleTemporaryErrorDeadline RuleID = "temporary-error-deadline"
	// RulePrefStudyOptOut: opting out ends preference studies at once (general-opt-out),
	// and about:studies removes them (individual-opt-out); a disabled study action
	// neither processes recipes nor finalizes.
	RulePrefStudyOptOut RuleID = "preference-study-opt-out"
	// RulePrefStudyEnrollFailed: enrollFailed for preference studies.
	RulePrefStudyEnrollFailed RuleID = "preference-study-enroll-failed"
	// RulePrefStudyUnenrollFailed: unenrollFailed for preference studies (stop of a
	// study that does not exist or already ended).
	RulePrefStudyUnenrollFailed RuleID = "preference-study-unenroll-failed"
	// RuleOriginalReason: unenrollFailed carries originalReason.
	RuleOriginalReason RuleID = "unenroll-failed-original-reason"
	// RuleUserPrefChangedUnenroll: a user's change of a study preference ends the study
	// (user-preference-changed[-sideload], didResetValue "false").
	RuleUserPrefChangedUnenroll RuleID = "user-preference-changed-unenroll"
	// RuleChangedPrefExtra: that unenroll carries changedPref.
	RuleChangedPrefExtra RuleID = "changed-pref-extra"
	// RuleExpPrefChanged: a user's change is recorded as expPrefChanged and the study
	// stays enrolled with the preference overridden.
	RuleExpPrefChanged RuleID = "exp-pref-changed"
	// RuleUnenrollBranchExtra: unenroll of a preference study carries branch.
	RuleUnenrollBranchExtra RuleID = "unenroll-branch-extra"
	// RuleMultiPreference: multi-preference-experiment, several preferences per branch.
	RuleMultiPreference RuleID = "multi-preference-experiment"
	// RuleBranchedAddon: branched-addon-study: a branch without an add-on (control),
	// update and updateFailed, branch-removed.
	RuleBranchedAddon RuleID = "branched-addon-study"
	// RuleEnrollmentIDExtra: enrollmentId in the extras of every enrollment event.
	RuleEnrollmentIDExtra RuleID = "enrollment-id-extra"
	// RulePreferenceRollouts: preference-rollout and preference-rollback recipes and
	// their events.
	RulePreferenceRollouts RuleID = "preference-rollouts"
	// RuleGraduateReason: graduate carries reason (all-prefs-match, in-graduation-set).
	RuleGraduateReason RuleID = "graduate-reason"
)

// Eras, by their first Firefox release. Where a rule's own first release could not be
// confirmed from the source, the rule starts with its era's first release.
const (
	// Era2018 is the seed's era: Firefox 58 (2018-01-23) was the first release of 2018.
	Era2018 FirefoxVersion = 58
	// Era2019 is local actions and suitabilities: Firefox 65 (2019-01-29).
	Era2019 FirefoxVersion = 65
	// Era2020 is enrollmentId and branched add-on studies: Firefox 72 (2020-01-07).
	Era2020 FirefoxVersion = 72
	// EraCurrent is the overridden-preference model: Firefox 96 (2022-01-11).
	EraCurrent FirefoxVersion = 96
)

// Rule is one versioned rule: the Firefox versions that had it (First..Last inclusive;
// Last 0 means still in Firefox; First 0 means the seed's own rule, which unversioned
// commands follow), the Normandy client file it comes from and its era.
type Rule struct {
	ID          RuleID
	Description string
	First, Last FirefoxVersion
	Era         string
	Source      string
	// Boundary says how First and Last were chosen.
	Boundary string
}

const eraFirst = "era's first release (the rule's own first release not confirmed)"

// Rules is the table of versioned rules, rendered into docs/commands.md. The sources
// are files of Firefox's Normandy client (toolkit/components/normandy in
// mozilla/gecko-dev and its forks), found with the search tool.
var Rules = []Rule{
	{ID: RuleSeedOnlyStatuses, First: 0, Last: Era2019 - 1, Era: "E2018",
		Description: "`RUNNER_NETWORK_ERROR`, `RUNNER_INVALID_SIGNATURE`, `ACTION_NETWORK_ERROR`, `ACTION_SERVER_ERROR`, `RECIPE_INVALID_ACTION` are sent (remote actions fetched from the server)",
		Source:      "lib/Uptake.jsm, lib/RecipeRunner.jsm (2018); gone once actions were local (actions/BaseAction.jsm)", Boundary: "last: the release before E2019's first; " + eraFirst},
	{ID: RuleExecutionUptake, First: 0, Last: EraCurrent - 1, Era: "E2018–E2020–22",
		Description: "action statuses (`ACTION_*`) and `RECIPE_SUCCESS`, `RECIPE_EXECUTION_ERROR`, `RECIPE_ACTION_DISABLED` are sent; from the current era uptake is the runner's and the unsuited recipes' only, a matching recipe is reported without a `status`, and every study action finalizes",
		Source:      "lib/Uptake, actions/BaseAction (E2019–20 reportRecipe); lib/RecipeRunner.sys.mjs getRecipeSuitability (FILTER_MATCH reports nothing), lib/ActionsManager.sys.mjs finalize", Boundary: "last: the release before the current era's first; " + eraFirst},
	{ID: RuleFilterStatuses, First: Era2019, Era: "E2019–20",
		Description: "`RECIPE_DIDNT_MATCH_FILTER` (`backoff`) and `RECIPE_FILTER_BROKEN` (`content_error`) are sent for recipes whose filter did not match or threw",
		Source:      "lib/RecipeRunner.jsm checkFilter, lib/Uptake.jsm (added late 2018)", Boundary: eraFirst},
	{ID: RuleSuitabilityStatuses, First: Era2019, Era: "E2019–20",
		Description: "`RECIPE_INCOMPATIBLE_CAPABILITIES` (`backoff`) and `RECIPE_INVALID_SIGNATURE` (`sign_error`) are sent",
		Source:      "lib/RecipeRunner.sys.mjs getRecipeSuitability, lib/Uptake.sys.mjs", Boundary: eraFirst},
	{ID: RuleSuitabilityUnenroll, First: Era2019, Era: "E2019–20",
		Description: "a recipe that no longer suits an enrolled client marks its study seen and ends it at once: `filter-mismatch`, `capability-mismatch`, `arguments-invalid`",
		Source:      "actions/BaseAction, actions/PreferenceExperimentAction, actions/BranchedAddonStudyAction (_processRecipe by suitability)", Boundary: eraFirst},
	{ID: RuleTemporaryErrorDeadline, First: Era2019, Era: "E2019–20",
		Description: "`RECIPE_INVALID_SIGNATURE`, `RECIPE_FILTER_BROKEN` and a run with no recipes end a study only after 7 days of temporary errors (`signature-error`, `filter-error`, `no-recipes`); a matching run clears the deadline",
		Source:      "actions/BaseStudyAction, lib/PreferenceExperiments (temporaryErrorDeadline), lib/AddonStudies", Boundary: eraFirst},
	{ID: RulePrefStudyOptOut, First: Era2019, Era: "E2019–20",
		Description: "opting out ends preference studies at once with `general-opt-out`; about:studies removes one with `individual-opt-out`; a disabled study action skips its recipes and its finalize",
		Source:      "actions/BaseStudyAction (_preExecution disable), lib/ShieldPreferences, content/AboutPages", Boundary: eraFirst},
	{ID: RulePrefStudyEnrollFailed, First: Era2019, Era: "E2019–20",
		Description: "`enrollFailed` `preference_study` with `name-conflict`, `pref-conflict`, `experiment-type-too-long`, `invalid-branch` (+`prefBranch`), `invalid-type`",
		Source:      "lib/PreferenceExperiments start()", Boundary: eraFirst},
	{ID: RulePrefStudyUnenrollFailed, First: Era2019, Era: "E2019–20",
		Description: "`unenrollFailed` `preference_study` with `does-not-exist` or `already-unenrolled` when a stop finds no active study",
		Source:      "lib/PreferenceExperiments stop()", Boundary: eraFirst},
	{ID: RuleOriginalReason, First: Era2020, Era: "E2020–22",
		Description: "`unenrollFailed` carries `originalReason`",
		Source:      "lib/PreferenceExperiments stop(); metrics.yaml (bug 1693402)", Boundary: eraFirst},
	{ID: RuleUserPrefChangedUnenroll, First: 0, Last: EraCurrent - 1, Era: "E2018–E2020–22",
		Description: "a user's change of a study preference ends the study: `user-preference-changed[-sideload]`, `didResetValue` `\"false\"`",
		Source:      "lib/PreferenceExperiments.jsm (observer and init)", Boundary: "last: the release before the current era's first; " + eraFirst},
	{ID: RuleChangedPrefExtra, First: Era2020, Last: EraCurrent - 1, Era: "E2020–22",
		Description: "that unenroll carries `changedPref`",
		Source:      "lib/PreferenceExperiments.jsm stop({changedPref})", Boundary: eraFirst},
	{ID: RuleExpPrefChanged, First: EraCurrent, Era: "current",
		Description: "a user's change is `expPrefChanged` (`preferenceName`, `reason` `observer`/`sideload`); the study stays enrolled with the preference overridden",
		Source:      "lib/PreferenceExperiments.sys.mjs; metrics.yaml exp_pref_changed (bug 1698684)", Boundary: eraFirst},
	{ID: RuleUnenrollBranchExtra, First: Era2018, Era: "E2018",
		Description: "`unenroll` `preference_study` carries `branch` (the 2018 code sent it; the seed document does not list it, so unversioned commands keep the seed's shape)",
		Source:      "lib/PreferenceExperiments.jsm stop()", Boundary: eraFirst},
	{ID: RuleMultiPreference, First: Era2020, Era: "E2020–22",
		Description: "`multi-preference-experiment`: each branch sets several preferences",
		Source:      "actions/PreferenceExperimentAction, lib/PreferenceExperiments (preferences map, migration02)", Boundary: eraFirst},
	{ID: RuleBranchedAddon, First: Era2020, Era: "E2020–22",
		Description: "`branched-addon-study`: a branch without an add-on enrolls with `__NO_ADDON__`; a new add-on version is `update`, a failed one `updateFailed`; a removed branch unenrolls `branch-removed`",
		Source:      "actions/BranchedAddonStudyAction, lib/AddonStudies; metrics.yaml update (bug 1474413)", Boundary: eraFirst},
	{ID: RuleEnrollmentIDExtra, First: Era2020, Last: EraCurrent - 1, Era: "E2020–22",
		Description: "every enrollment event carries `enrollmentId`",
		Source:      "lib/TelemetryEvents, lib/PreferenceExperiments, lib/AddonStudies, lib/PreferenceRollouts (E2020–22 revisions)", Boundary: eraFirst},
	{ID: RulePreferenceRollouts, First: Era2018, Era: "E2018",
		Description: "`preference-rollout` and `preference-rollback` recipes: `enroll`, `enrollFailed`, `update` (`previousState`), `graduate` `preference_rollout`; `unenroll`, `unenrollFailed` `preference_rollback`",
		Source:      "lib/PreferenceRollouts, actions/PreferenceRolloutAction, actions/PreferenceRollbackAction, lib/TelemetryEvents.jsm (E2018 schema)", Boundary: eraFirst},
	{ID: RuleGraduateReason, First: Era2020, Era: "E2020–22",
		Description: "`graduate` carries `reason` (`all-prefs-match`, `in-graduation-set`)",
		Source:      "lib/PreferenceRollouts.sys.mjs (GRADUATION_SET, recordOriginalValues)", Boundary: eraFirst},
}

var rulesByID = func() map[RuleID]Rule {
	m := make(map[RuleID]Rule, len(Rules))
	for _, r := range Rules {
		m[r.ID] = r
	}
	return m
}()

// RuleFor returns the rule with id; it panics on an id not in Rules (a programming error).
func RuleFor(id RuleID) Rule {
	r, ok := rulesByID[id]
	if !ok {
		panic("domain: no rule " + string(id))
	}
	return r
}

// Has reports whether Firefox v followed rule id. An unversioned command (0) follows
// the seed's own rules (First 0) and no later ones.
func (v FirefoxVersion) Has(id RuleID) bool {
	r := RuleFor(id)
	if v == 0 {
		return r.First == 0
	}
	return r.First <= v && (r.Last == 0 || v <= r.Last)
}

// Versions renders a rule's range: "65–", "58–95", "≤64".
func (r Rule) Versions() string {
	switch {
	case r.First == 0 && r.Last == 0:
		return "all"
	case r.First == 0:
		return fmt.Sprintf("unversioned, ≤%d", r.Last)
	case r.Last == 0:
		return fmt.Sprintf("%d–", r.First)
	}
	return fmt.Sprintf("%d–%d", r.First, r.Last)
}
