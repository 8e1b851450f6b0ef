package domain

import (
	"errors"
	"fmt"
	"time"
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
)

// CommandTypes lists every command type.
var CommandTypes = []CommandType{CommandRecipeRun, CommandOptOut, CommandStudyRemoved,
	CommandAddonUninstalled, CommandPrefChanged, CommandUnenroll}

// ParseCommandType accepts a known command type.
func ParseCommandType(v string) (CommandType, error) {
	t, err := parseEnum("command type", v, CommandTypes)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnknownCommandType, err)
	}
	return t, nil
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

	// recipe_run
	RunnerStatus UptakeStatus   `msgpack:"runner_status,omitempty" json:"runner_status,omitempty"`
	Actions      []ActionReport `msgpack:"actions,omitempty" json:"actions,omitempty"`
	Recipes      []RecipeReport `msgpack:"recipes,omitempty" json:"recipes,omitempty"`

	// opt_out: the new value of app.shield.optoutstudies.enabled (false = opted out).
	StudiesEnabled bool `msgpack:"studies_enabled,omitempty" json:"studies_enabled,omitempty"`

	// study_removed, unenroll
	Study *StudyRef `msgpack:"study,omitempty" json:"study,omitempty"`
	// unenroll: the reason; empty means unknown.
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
	ID        RecipeID        `msgpack:"id" json:"id"`
	Action    string          `msgpack:"action" json:"action"`
	Status    UptakeStatus    `msgpack:"status" json:"status"`
	Arguments RecipeArguments `msgpack:"arguments" json:"arguments"`
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
