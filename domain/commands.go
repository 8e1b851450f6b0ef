package domain

import (
	"errors"
	"slices"
	"time"

	"github.com/studyd/studyd/recipe"
)

// ErrUnknownCommandType is returned for a command whose type studyd does not know.
var ErrUnknownCommandType = errors.New("domain: unknown command type")

// CommandType names what a command asks for. Values are part of the public contract.
type CommandType string

// The command types (docs/commands.md has one JSON example of each).
const (
	CommandRecipeRun        CommandType = "recipe_run"        // one execution of the recipe runner
	CommandOptOut           CommandType = "opt_out"           // the studies opt-out pref changed
	CommandStudyRemoved     CommandType = "study_removed"     // the user removed one study in about:studies
	CommandAddonUninstalled CommandType = "addon_uninstalled" // a study add-on was uninstalled (or found missing)
	CommandPrefChanged      CommandType = "pref_changed"      // the user changed a study preference
	CommandUnenroll         CommandType = "unenroll"          // an operator ends one enrollment
	// CommandRolloutGraduated: at startup a preference rollout's values were found to be
	// Firefox's defaults, or its slug in Firefox's graduation set (later Firefox only).
	CommandRolloutGraduated CommandType = "rollout_graduated"
)

// CommandTypes lists every command type.
var CommandTypes = []CommandType{CommandRecipeRun, CommandOptOut, CommandStudyRemoved,
	CommandAddonUninstalled, CommandPrefChanged, CommandUnenroll, CommandRolloutGraduated}

// ParseCommandType accepts a known command type.
func ParseCommandType(v string) (CommandType, error) {
	if slices.Contains(CommandTypes, CommandType(v)) {
		return CommandType(v), nil
	}
	// Both sentinels match; the message names the problem once.
	return "", &sentinelError{msg: "domain: " + enumMessage("command type", v, CommandTypes),
		is: []error{ErrUnknownCommandType, ErrInvalid}}
}

// Limits on one command, so a hostile or broken client cannot make one decision
// arbitrarily expensive.
const (
	MaxCommandIDLen   = 128
	MaxActionsPerRun  = 64
	MaxRecipesPerRun  = 1024
	MaxBranches       = 64
	MaxFieldLen       = 256 // add-on ids, versions, preference names
	MaxCommandPayload = 1 << 20
)

// Limits on what a client's state may hold, so that the state every commit carries
// stays bounded over a client's whole life (docs/commands.md, "Limits"): at most
// MaxEnrollmentsPerClient enrollments of bounded fields each, reasons kept to
// MaxStateReason bytes (the events keep the full reason), RecentCommands command ids.
const (
	MaxEnrollmentsPerClient = 1024
	MaxStateReason          = MaxTelemetryString
)

// Command is one input to studyd. Fields below the common four are used by the types
// named in their comments; a field set on a type that does not use it is an error.
type Command struct {
	Type      CommandType `msgpack:"type" json:"type"`
	CommandID string      `msgpack:"command_id" json:"command_id"`
	ClientID  ClientID    `msgpack:"client_id" json:"client_id"`
	At        time.Time   `msgpack:"at" json:"at"`
	// FirefoxVersion is the version of the Firefox that sent the command ("62.0.3"); the
	// command is decided by that version's rules (domain.Rules). Empty: the seed's
	// 2018 rules.
	FirefoxVersion string `msgpack:"firefox_version,omitempty" json:"firefox_version,omitempty"`

	// recipe_run
	RunnerStatus UptakeStatus   `msgpack:"runner_status,omitempty" json:"runner_status,omitempty"`
	Actions      []ActionReport `msgpack:"actions,omitempty" json:"actions,omitempty"`
	Recipes      []RecipeReport `msgpack:"recipes,omitempty" json:"recipes,omitempty"`

	// opt_out: the new value of app.shield.optoutstudies.enabled (false = opted out).
	StudiesEnabled bool `msgpack:"studies_enabled,omitempty" json:"studies_enabled,omitempty"`

	// study_removed, unenroll, rollout_graduated
	Study *StudyRef `msgpack:"study,omitempty" json:"study,omitempty"`
	// unenroll: the reason; empty means unknown. rollout_graduated: the graduate reason.
	Reason Reason `msgpack:"reason,omitempty" json:"reason,omitempty"`

	// addon_uninstalled
	AddonID string `msgpack:"addon_id,omitempty" json:"addon_id,omitempty"`
	// pref_changed
	Preference string `msgpack:"preference,omitempty" json:"preference,omitempty"`
	// addon_uninstalled, pref_changed: it happened while Normandy was inactive.
	Sideload bool `msgpack:"sideload,omitempty" json:"sideload,omitempty"`
}

// ActionReport is one action's uptake in a run.
type ActionReport struct {
	Name   string       `msgpack:"name" json:"name"`
	Status UptakeStatus `msgpack:"status" json:"status"`
}

// RecipeReport is one recipe's execution in a run: its uptake status and the recipe's
// arguments as the client received them (an add-on study's with the install outcome
// the client saw added).
type RecipeReport struct {
	ID        RecipeID         `msgpack:"id" json:"id"`
	Action    string           `msgpack:"action" json:"action"`
	Status    UptakeStatus     `msgpack:"status" json:"status"`
	Arguments recipe.Arguments `msgpack:"arguments" json:"arguments"`
}

// studyActions maps the Normandy action names that run studies to the study kind they
// manage: the 2018 remote actions and their later local successors.
var studyActions = map[string]Object{
	"preference-experiment":       PreferenceStudy,
	"multi-preference-experiment": PreferenceStudy,
	"opt-out-study":               AddonStudy,
	"addon-study":                 AddonStudy,
	"branched-addon-study":        AddonStudy,
}

// Version returns the command's Firefox major version (0 when unversioned or invalid;
// Validate reports an invalid one).
func (c Command) Version() FirefoxVersion {
	v, _ := ParseFirefoxVersion(c.FirefoxVersion)
	return v
}

// rolloutActions maps the rollout actions to the object of their events.
var rolloutActions = map[string]Object{
	"preference-rollout":  PreferenceRollout,
	"preference-rollback": PreferenceRollback,
}

// RolloutObjectForAction returns the object of a rollout action's events, or false.
func RolloutObjectForAction(action string) (Object, bool) {
	o, ok := rolloutActions[action]
	return o, ok
}

// StudyObjectForAction returns the study kind an action manages, or false for an
// action that manages no study (e.g. show-heartbeat, console-log).
func StudyObjectForAction(action string) (Object, bool) {
	o, ok := studyActions[action]
	return o, ok
}

// Study returns the study a recipe report is about, or false if its action runs no study.
// A preference study whose arguments name no readable slug has an empty key.
func (r RecipeReport) Study() (StudyRef, bool) {
	o, ok := StudyObjectForAction(r.Action)
	if !ok {
		return StudyRef{}, false
	}
	if o == AddonStudy {
		return StudyRef{Object: o, Key: r.ID.String()}, true
	}
	a, _ := r.Arguments.Study() // unreadable arguments name no study: the key stays empty
	return StudyRef{Object: o, Key: a.StudySlug()}, true
}
