package domain

import "unicode/utf8"

// TelemetryCategory is the category of every Normandy enrollment event.
const TelemetryCategory = "normandy"

// Object is the telemetry object of an enrollment event: the kind of study.
type Object string

// The seed's two study kinds.
const (
	PreferenceStudy Object = "preference_study"
	AddonStudy      Object = "addon_study"
)

// Objects is the seed's set of study objects.
var Objects = []Object{PreferenceStudy, AddonStudy}

// ParseObject accepts preference_study or addon_study.
func ParseObject(v string) (Object, error) { return parseEnum("object", v, Objects) }

// Method is the telemetry method of an enrollment event.
type Method string

// The seed's enrollment methods.
const (
	MethodEnroll       Method = "enroll"
	MethodEnrollFailed Method = "enrollFailed"
	MethodUnenroll     Method = "unenroll"
)

// Methods is the seed's set of methods.
var Methods = []Method{MethodEnroll, MethodEnrollFailed, MethodUnenroll}

// ParseMethod accepts enroll, enrollFailed or unenroll.
func ParseMethod(v string) (Method, error) { return parseEnum("method", v, Methods) }

// Extra keys of the seed, spelled exactly.
const (
	ExtraBranch         = "branch"
	ExtraExperimentType = "experimentType"
	ExtraDidResetValue  = "didResetValue"
	ExtraReason         = "reason"
	ExtraAddonID        = "addonId"
	ExtraAddonVersion   = "addonVersion"
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

// reasonsByObject lists, per study kind, the unenroll reasons the seed allows.
var reasonsByObject = map[Object][]Reason{
	PreferenceStudy: {ReasonRecipeNotSeen, ReasonUserPreferenceChanged, ReasonUserPreferenceChangedSideload, ReasonUnknown},
	AddonStudy: {ReasonInstallFailure, ReasonIndividualOptOut, ReasonGeneralOptOut, ReasonRecipeNotSeen,
		ReasonUninstalled, ReasonUninstalledSideload, ReasonUnknown},
}

// Reasons returns the unenroll reasons the seed allows for o, in the seed's order.
func Reasons(o Object) []Reason { return reasonsByObject[o] }

// ParseReason accepts an unenroll reason the seed allows for object o.
func ParseReason(o Object, v string) (Reason, error) {
	return parseEnum("unenroll reason for "+string(o), v, reasonsByObject[o])
}

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
