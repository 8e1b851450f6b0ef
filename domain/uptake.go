package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// UptakeStatus is one of the status constants of the seed's Uptake section. The
// constant's name (RUNNER_SUCCESS) is what commands carry and what tallies count; Label
// gives the value Firefox put on the wire.
type UptakeStatus string

// Runner statuses, reported once per fetch and execution under normandy/runner.
const (
	RunnerInvalidSignature UptakeStatus = "RUNNER_INVALID_SIGNATURE"
	RunnerNetworkError     UptakeStatus = "RUNNER_NETWORK_ERROR"
	RunnerServerError      UptakeStatus = "RUNNER_SERVER_ERROR"
	RunnerSuccess          UptakeStatus = "RUNNER_SUCCESS"
)

// Action statuses, reported per action under normandy/action/<action name>.
const (
	ActionNetworkError       UptakeStatus = "ACTION_NETWORK_ERROR"
	ActionPreExecutionError  UptakeStatus = "ACTION_PRE_EXECUTION_ERROR"
	ActionPostExecutionError UptakeStatus = "ACTION_POST_EXECUTION_ERROR"
	ActionServerError        UptakeStatus = "ACTION_SERVER_ERROR"
	ActionSuccess            UptakeStatus = "ACTION_SUCCESS"
)

// Recipe statuses, reported per executed recipe under normandy/recipe/<recipe id>.
const (
	RecipeActionDisabled UptakeStatus = "RECIPE_ACTION_DISABLED"
	RecipeExecutionError UptakeStatus = "RECIPE_EXECUTION_ERROR"
	RecipeInvalidAction  UptakeStatus = "RECIPE_INVALID_ACTION"
	RecipeSuccess        UptakeStatus = "RECIPE_SUCCESS"
)

// Recipe statuses of later Firefox (not in the seed): the outcome of a recipe's
// suitability check. A command that does not name its Firefox version may carry them:
// only a later client can have sent them, so they are recorded and tallied as reported.
const (
	RecipeDidntMatchFilter         UptakeStatus = "RECIPE_DIDNT_MATCH_FILTER"
	RecipeFilterBroken             UptakeStatus = "RECIPE_FILTER_BROKEN"
	RecipeIncompatibleCapabilities UptakeStatus = "RECIPE_INCOMPATIBLE_CAPABILITIES"
	RecipeInvalidSignature         UptakeStatus = "RECIPE_INVALID_SIGNATURE"
)

// RunnerStatuses, ActionStatuses and RecipeStatuses are the seed's sets, in its order;
// LaterRecipeStatuses are those later Firefox added.
var (
	RunnerStatuses      = []UptakeStatus{RunnerInvalidSignature, RunnerNetworkError, RunnerServerError, RunnerSuccess}
	ActionStatuses      = []UptakeStatus{ActionNetworkError, ActionPreExecutionError, ActionPostExecutionError, ActionServerError, ActionSuccess}
	RecipeStatuses      = []UptakeStatus{RecipeActionDisabled, RecipeExecutionError, RecipeInvalidAction, RecipeSuccess}
	LaterRecipeStatuses = []UptakeStatus{RecipeDidntMatchFilter, RecipeFilterBroken, RecipeIncompatibleCapabilities, RecipeInvalidSignature}
	allRecipeStatuses   = append(append([]UptakeStatus(nil), RecipeStatuses...), LaterRecipeStatuses...)
)

// statusRules ties the statuses that not every Firefox sent to the rule that had them.
var statusRules = map[UptakeStatus]RuleID{
	RunnerNetworkError: RuleSeedOnlyStatuses, RunnerInvalidSignature: RuleSeedOnlyStatuses,
	ActionNetworkError: RuleSeedOnlyStatuses, ActionServerError: RuleSeedOnlyStatuses, RecipeInvalidAction: RuleSeedOnlyStatuses,
	RecipeDidntMatchFilter: RuleFilterStatuses, RecipeFilterBroken: RuleFilterStatuses,
	RecipeIncompatibleCapabilities: RuleSuitabilityStatuses, RecipeInvalidSignature: RuleSuitabilityStatuses,
	ActionPreExecutionError: RuleExecutionUptake, ActionPostExecutionError: RuleExecutionUptake, ActionSuccess: RuleExecutionUptake,
	RecipeSuccess: RuleExecutionUptake, RecipeExecutionError: RuleExecutionUptake, RecipeActionDisabled: RuleExecutionUptake,
}

// Matched reports whether a recipe's status says its filter matched and its action ran
// it: RECIPE_SUCCESS or RECIPE_EXECUTION_ERROR, or no status at all (current Firefox
// reports nothing for a matching recipe).
func (s UptakeStatus) Matched() bool {
	return s == RecipeSuccess || s == RecipeExecutionError || s == ""
}

// StatusRule returns the rule under which Firefox sent s, or false for a status every
// version sent.
func (s UptakeStatus) StatusRule() (RuleID, bool) {
	r, ok := statusRules[s]
	return r, ok
}

// SentBy checks that Firefox v could have sent status s. An unversioned command may
// carry any known status (a later one is tallied as reported); a versioned one only
// its version's.
func (s UptakeStatus) SentBy(v FirefoxVersion) error {
	r, ok := statusRules[s]
	if !ok || v == 0 || v.Has(r) {
		return nil
	}
	return fmt.Errorf("%w: status %s was not sent by Firefox %s (rule %s: Firefox %s)", ErrInvalid, s, v, r, RuleFor(r).Versions())
}

// uptakeLabels maps each status to the UptakeTelemetry label Firefox sent for it.
var uptakeLabels = map[UptakeStatus]string{
	RunnerInvalidSignature: "sign_error", RunnerNetworkError: "network_error",
	RunnerServerError: "server_error", RunnerSuccess: "success",
	ActionNetworkError: "network_error", ActionPreExecutionError: "custom_1_error",
	ActionPostExecutionError: "custom_2_error", ActionServerError: "server_error", ActionSuccess: "success",
	RecipeActionDisabled: "custom_1_error", RecipeExecutionError: "apply_error",
	RecipeInvalidAction: "download_error", RecipeSuccess: "success",
	RecipeDidntMatchFilter: "backoff", RecipeFilterBroken: "content_error",
	RecipeIncompatibleCapabilities: "backoff", RecipeInvalidSignature: "sign_error",
}

// Label is the UptakeTelemetry label Firefox reported for s (e.g. "custom_1_error").
// The same label means different things under different sources, so tallies count the
// constant, not the label.
func (s UptakeStatus) Label() string { return uptakeLabels[s] }

// ParseRunnerStatus, ParseActionStatus and ParseRecipeStatus accept only their own set.
func ParseRunnerStatus(v string) (UptakeStatus, error) {
	return parseEnum("runner status", v, RunnerStatuses)
}

// ParseActionStatus accepts only an ACTION_* status.
func ParseActionStatus(v string) (UptakeStatus, error) {
	return parseEnum("action status", v, ActionStatuses)
}

// ParseRecipeStatus accepts only a RECIPE_* status, of the seed or of later Firefox.
func ParseRecipeStatus(v string) (UptakeStatus, error) {
	return parseEnum("recipe status", v, allRecipeStatuses)
}

// Uptake source keys (the seed's "key" of each status report).
const (
	SourceRunner       = "normandy/runner"
	sourceActionPrefix = "normandy/action/"
	sourceRecipePrefix = "normandy/recipe/"
)

// ActionSource is the uptake source key of an action: normandy/action/<action name>.
func ActionSource(action string) string { return sourceActionPrefix + action }

// RecipeSource is the uptake source key of a recipe: normandy/recipe/<recipe id>.
func RecipeSource(id RecipeID) string { return sourceRecipePrefix + id.String() }

// SourceKind names which of the three seed families a source key belongs to:
// "runner", "action" or "recipe". It returns an error for anything else.
func SourceKind(source string) (string, error) {
	switch {
	case source == SourceRunner:
		return "runner", nil
	case strings.HasPrefix(source, sourceActionPrefix) && len(source) > len(sourceActionPrefix):
		return "action", nil
	case strings.HasPrefix(source, sourceRecipePrefix):
		if _, err := strconv.ParseUint(strings.TrimPrefix(source, sourceRecipePrefix), 10, 64); err == nil {
			return "recipe", nil
		}
	}
	return "", fmt.Errorf("%w: unknown uptake source %q (allowed: %s, %s<action name>, %s<recipe id>)",
		ErrInvalid, source, SourceRunner, sourceActionPrefix, sourceRecipePrefix)
}

// StatusesFor returns the statuses allowed under a source kind from SourceKind.
func StatusesFor(kind string) []UptakeStatus {
	switch kind {
	case "runner":
		return RunnerStatuses
	case "action":
		return ActionStatuses
	case "recipe":
		return allRecipeStatuses
	}
	return nil
}
