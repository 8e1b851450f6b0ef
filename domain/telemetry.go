package domain

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// TelemetryCategory is the category of every Normandy enrollment event.
const TelemetryCategory = "normandy"

// Object is the telemetry object of an enrollment event: the kind of study.
type Object string

// The seed's two study kinds.
const (
	PreferenceStudy Object = "preference_study"
	AddonStudy      Object = "addon_study"
)

// The rollout objects of later Firefox (not in the seed): a preference rollout, and the
// rollback of one (whose events are about the rollout it rolls back).
const (
	PreferenceRollout  Object = "preference_rollout"
	PreferenceRollback Object = "preference_rollback"
)

// Objects is the seed's set of study objects; AllObjects adds the rollout objects.
var (
	Objects    = []Object{PreferenceStudy, AddonStudy}
	AllObjects = []Object{PreferenceStudy, AddonStudy, PreferenceRollout, PreferenceRollback}
)

// ParseObject accepts preference_study, addon_study or preference_rollout (a
// rollback's events name preference_rollback, but it is not a record of its own).
func ParseObject(v string) (Object, error) {
	return parseEnum("object", v, []Object{PreferenceStudy, AddonStudy, PreferenceRollout})
}

// IsRollout reports whether o is a rollout object (its own state machine).
func (o Object) IsRollout() bool { return o == PreferenceRollout || o == PreferenceRollback }

// Method is the telemetry method of an enrollment event.
type Method string

// The seed's enrollment methods.
const (
	MethodEnroll       Method = "enroll"
	MethodEnrollFailed Method = "enrollFailed"
	MethodUnenroll     Method = "unenroll"
)

// Methods of later Firefox.
const (
	MethodUnenrollFailed Method = "unenrollFailed"
	MethodExpPrefChanged Method = "expPrefChanged"
	MethodUpdate         Method = "update"
	MethodUpdateFailed   Method = "updateFailed"
	MethodGraduate       Method = "graduate"
)

// Methods is the seed's set of methods; AllMethods adds the later ones.
var (
	Methods    = []Method{MethodEnroll, MethodEnrollFailed, MethodUnenroll}
	AllMethods = []Method{MethodEnroll, MethodEnrollFailed, MethodUnenroll, MethodUnenrollFailed,
		MethodExpPrefChanged, MethodUpdate, MethodUpdateFailed, MethodGraduate}
)

// ParseMethod accepts a method of the seed or of later Firefox.
func ParseMethod(v string) (Method, error) { return parseEnum("method", v, AllMethods) }

// Extra keys of the seed, spelled exactly.
const (
	ExtraBranch         = "branch"
	ExtraExperimentType = "experimentType"
	ExtraDidResetValue  = "didResetValue"
	ExtraReason         = "reason"
	ExtraAddonID        = "addonId"
	ExtraAddonVersion   = "addonVersion"

	// Extras of later Firefox.
	ExtraEnrollmentID   = "enrollmentId"
	ExtraChangedPref    = "changedPref"
	ExtraOriginalReason = "originalReason"
	ExtraPreferenceName = "preferenceName"
	ExtraPreference     = "preference"
	ExtraPrefBranch     = "prefBranch"
	ExtraPreviousState  = "previousState"
)

// ExperimentType is the type of a preference experiment.
type ExperimentType string

// The seed's experiment types; exp-highpop targets large numbers of users.
const (
	ExperimentTypeExp        ExperimentType = "exp"
	ExperimentTypeExpHighpop ExperimentType = "exp-highpop"
)

// ExperimentTypes is the seed's set of experiment types.
var ExperimentTypes = []ExperimentType{ExperimentTypeExp, ExperimentTypeExpHighpop}

// ParseExperimentType accepts exp or exp-highpop.
func ParseExperimentType(v string) (ExperimentType, error) {
	return parseEnum("experimentType", v, ExperimentTypes)
}

// ExperimentTypeFor is exp-highpop for a high-population recipe, else exp.
func ExperimentTypeFor(highPopulation bool) ExperimentType {
	if highPopulation {
		return ExperimentTypeExpHighpop
	}
	return ExperimentTypeExp
}

// DidResetValue is the wire form of the didResetValue extra: "true" or "false".
func DidResetValue(reset bool) string {
	if reset {
		return "true"
	}
	return "false"
}

// Reason is why an enrollment ended (the reason extra of unenroll).
type Reason string

// Every unenroll reason of the seed, for both study kinds.
const (
	ReasonRecipeNotSeen                 Reason = "recipe-not-seen"
	ReasonUserPreferenceChanged         Reason = "user-preference-changed"
	ReasonUserPreferenceChangedSideload Reason = "user-preference-changed-sideload"
	ReasonUnknown                       Reason = "unknown"
	ReasonInstallFailure                Reason = "install-failure"
	ReasonIndividualOptOut              Reason = "individual-opt-out"
	ReasonGeneralOptOut                 Reason = "general-opt-out"
	ReasonUninstalled                   Reason = "uninstalled"
	ReasonUninstalledSideload           Reason = "uninstalled-sideload"
)

// Unenroll reasons of later Firefox (not in the seed).
const (
	ReasonFilterMismatch                    Reason = "filter-mismatch"
	ReasonCapabilityMismatch                Reason = "capability-mismatch"
	ReasonArgumentsInvalid                  Reason = "arguments-invalid"
	ReasonSignatureError                    Reason = "signature-error"
	ReasonFilterError                       Reason = "filter-error"
	ReasonNoRecipes                         Reason = "no-recipes"
	ReasonBranchRemoved                     Reason = "branch-removed"
	ReasonMigrationRemovingSinglePrefAction Reason = "migration-removing-single-pref-action"
	ReasonMigrationRemovingUnbranchedAction Reason = "migration-removing-unbranched-action"
	ReasonRollback                          Reason = "rollback"
	ReasonGraduateAllPrefsMatch             Reason = "all-prefs-match"
	ReasonGraduateInGraduationSet           Reason = "in-graduation-set"
)

// reasonsByObject lists, per study kind, the unenroll reasons the seed allows.
var reasonsByObject = map[Object][]Reason{
	PreferenceStudy: {ReasonRecipeNotSeen, ReasonUserPreferenceChanged, ReasonUserPreferenceChangedSideload, ReasonUnknown},
	AddonStudy: {ReasonInstallFailure, ReasonIndividualOptOut, ReasonGeneralOptOut, ReasonRecipeNotSeen,
		ReasonUninstalled, ReasonUninstalledSideload, ReasonUnknown},
}

// laterReasons lists, per object, the unenroll reasons (graduate reasons for a
// rollout) later Firefox added, each with the rule under which Firefox sent it.
var laterReasons = map[Object][]struct {
	Reason Reason
	Rule   RuleID
}{
	PreferenceStudy: {
		{ReasonFilterMismatch, RuleSuitabilityUnenroll}, {ReasonCapabilityMismatch, RuleSuitabilityUnenroll},
		{ReasonArgumentsInvalid, RuleSuitabilityUnenroll}, {ReasonSignatureError, RuleTemporaryErrorDeadline},
		{ReasonFilterError, RuleTemporaryErrorDeadline}, {ReasonNoRecipes, RuleTemporaryErrorDeadline},
		{ReasonGeneralOptOut, RulePrefStudyOptOut}, {ReasonIndividualOptOut, RulePrefStudyOptOut},
		{ReasonMigrationRemovingSinglePrefAction, RuleMultiPreference},
	},
	AddonStudy: {
		{ReasonFilterMismatch, RuleSuitabilityUnenroll}, {ReasonCapabilityMismatch, RuleSuitabilityUnenroll},
		{ReasonArgumentsInvalid, RuleSuitabilityUnenroll}, {ReasonSignatureError, RuleTemporaryErrorDeadline},
		{ReasonFilterError, RuleTemporaryErrorDeadline}, {ReasonNoRecipes, RuleTemporaryErrorDeadline},
		{ReasonBranchRemoved, RuleBranchedAddon}, {ReasonMigrationRemovingUnbranchedAction, RuleBranchedAddon},
	},
	PreferenceRollback: {{ReasonRollback, RulePreferenceRollouts}},
	PreferenceRollout:  {{ReasonGraduateAllPrefsMatch, RuleGraduateReason}, {ReasonGraduateInGraduationSet, RuleGraduateReason}},
}

// Reasons returns the unenroll reasons the seed allows for o, in the seed's order.
func Reasons(o Object) []Reason { return reasonsByObject[o] }

// LaterReasons returns the reasons later Firefox added for o, in order.
func LaterReasons(o Object) []Reason {
	var out []Reason
	for _, r := range laterReasons[o] {
		out = append(out, r.Reason)
	}
	return out
}

// AllReasons returns the seed's and the later reasons for o.
func AllReasons(o Object) []Reason {
	return append(append([]Reason(nil), reasonsByObject[o]...), LaterReasons(o)...)
}

// ParseReason accepts an unenroll reason for object o, of the seed or of later Firefox
// (see ReasonSentBy for which version sent it).
func ParseReason(o Object, v string) (Reason, error) {
	return parseEnum("unenroll reason for "+string(o), v, AllReasons(o))
}

// ReasonRule returns the rule under which Firefox sent reason r for o; false for the
// seed's reasons (user-preference-changed[-sideload] are RuleUserPrefChangedUnenroll).
func ReasonRule(o Object, r Reason) (RuleID, bool) {
	if o == PreferenceStudy && (r == ReasonUserPreferenceChanged || r == ReasonUserPreferenceChangedSideload) {
		return RuleUserPrefChangedUnenroll, true
	}
	if slices.Contains(reasonsByObject[o], r) {
		return "", false
	}
	for _, l := range laterReasons[o] {
		if l.Reason == r {
			return l.Rule, true
		}
	}
	return "", false
}

// ReasonSentBy checks that Firefox v could have sent reason r for o. Unversioned
// commands may carry any known reason (tallied as reported).
func ReasonSentBy(o Object, r Reason, v FirefoxVersion) error {
	rule, ok := ReasonRule(o, r)
	if !ok || v == 0 || v.Has(rule) {
		return nil
	}
	return fmt.Errorf("%w: reason %s for %s was not sent by Firefox %s (rule %s: Firefox %s)", ErrInvalid, r, o, v, rule, RuleFor(rule).Versions())
}

// Reasons of enrollFailed for preference studies, and of unenrollFailed, in later
// Firefox; updateFailed reasons of branched add-on studies; enrollFailed reasons of
// preference rollouts.
var (
	PrefEnrollFailedReasons    = []string{"name-conflict", "pref-conflict", "experiment-type-too-long", "invalid-branch", "invalid-type"}
	UnenrollFailedReasons      = []string{"does-not-exist", "already-unenrolled"}
	RollbackFailedReasons      = []string{"in-graduation-set", "graduated"}
	AddonUpdateFailedReasons   = []string{"addon-id-mismatch", "addon-does-not-exist", "no-downgrade", "metadata-mismatch", "download-failure", "install-failure"}
	RolloutEnrollFailedReasons = []string{"conflict", "invalid type", "would-be-no-op"}
	ExpPrefChangedReasons      = []string{"observer", "sideload", "onEnroll"}
)

// Markers Firefox writes where a value is absent.
const (
	NoAddon    = "__NO_ADDON__"
	NoBranches = "__NO_BRANCHES__"
)

// MaxTelemetryString is the longest value or extra value a Telemetry event carries:
// Firefox truncates longer ones to 80 bytes.
const MaxTelemetryString = 80

// MaxEnrollFailedReason bounds the free-form enrollFailed reason a command may carry.
// The seed limits it to "filename and line number … and the name of the error"; longer
// input is rejected rather than silently cut, and the telemetry form is then truncated
// like Firefox's.
const MaxEnrollFailedReason = 1024

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence, as Firefox's
// Telemetry does for event values and extras.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// TelemetryEvent is an event in the shape Firefox sent it: category normandy, method,
// object, value (the study name) and extra (strings only).
type TelemetryEvent struct {
	ClientID  ClientID          `json:"client_id"`
	Timestamp int64             `json:"timestamp"` // milliseconds since the Unix epoch
	Category  string            `json:"category"`
	Method    Method            `json:"method"`
	Object    Object            `json:"object"`
	Value     string            `json:"value"`
	Extra     map[string]string `json:"extra"`
}
