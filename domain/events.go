package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/studyd/studyd/recipe"
)

// EventType names an event in the log. Values are permanent: add, never rename.
type EventType string

// The events studyd records.
const (
	// EventUptakeReported is one uptake status of a run (runner, action or recipe).
	EventUptakeReported EventType = "uptake_reported"
	// EventEnrolled is the seed's enroll: a client joined a study branch.
	EventEnrolled EventType = "enrolled"
	// EventEnrollFailed is the seed's enrollFailed: an add-on study could not start.
	EventEnrollFailed EventType = "enroll_failed"
	// EventUnenrolled is the seed's unenroll: an enrollment ended with a reason.
	EventUnenrolled EventType = "unenrolled"
	// EventStudiesOptOutChanged records the studies opt-out pref; it has no telemetry.
	EventStudiesOptOutChanged EventType = "studies_opt_out_changed"

	// Events of later Firefox.

	// EventUnenrollFailed is unenrollFailed: a stop found no active study or rollout.
	EventUnenrollFailed EventType = "unenroll_failed"
	// EventExpPrefChanged is expPrefChanged: a study preference was overridden.
	EventExpPrefChanged EventType = "exp_pref_changed"
	// EventUpdated is update: a new add-on version, or a changed rollout.
	EventUpdated EventType = "updated"
	// EventUpdateFailed is updateFailed.
	EventUpdateFailed EventType = "update_failed"
	// EventGraduated is graduate: a rollout's values became Firefox's defaults.
	EventGraduated EventType = "graduated"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventUptakeReported, EventEnrolled, EventEnrollFailed, EventUnenrolled, EventStudiesOptOutChanged,
	EventUnenrollFailed, EventExpPrefChanged, EventUpdated, EventUpdateFailed, EventGraduated}

// ParseEventType accepts a known event type.
func ParseEventType(v string) (EventType, error) { return parseEnum("event type", v, EventTypes) }

// Method is the telemetry method an event type is sent as, or "" if it is not an
// enrollment event.
func (t EventType) Method() Method {
	switch t {
	case EventEnrolled:
		return MethodEnroll
	case EventEnrollFailed:
		return MethodEnrollFailed
	case EventUnenrolled:
		return MethodUnenroll
	case EventUnenrollFailed:
		return MethodUnenrollFailed
	case EventExpPrefChanged:
		return MethodExpPrefChanged
	case EventUpdated:
		return MethodUpdate
	case EventUpdateFailed:
		return MethodUpdateFailed
	case EventGraduated:
		return MethodGraduate
	}
	return ""
}

// Event is one fact in a commit. It is flat so that its msgpack form is stable and
// cheap to fold; each type uses the fields its comment names and leaves the rest zero.
// Its time is the time of the commit that holds it.
type Event struct {
	Type EventType `msgpack:"type" json:"type"`

	// uptake_reported
	Source string       `msgpack:"source,omitempty" json:"source,omitempty"`
	Status UptakeStatus `msgpack:"status,omitempty" json:"status,omitempty"`

	// enrolled, enroll_failed, unenrolled
	Object       Object `msgpack:"object,omitempty" json:"object,omitempty"`
	Key          string `msgpack:"key,omitempty" json:"key,omitempty"`   // slug or recipe id
	Slug         string `msgpack:"slug,omitempty" json:"slug,omitempty"` // the telemetry value
	EnrollmentID string `msgpack:"enrollment_id,omitempty" json:"enrollment_id,omitempty"`
	From         State  `msgpack:"from,omitempty" json:"from,omitempty"` // the enrollment's FSM state before
	To           State  `msgpack:"to,omitempty" json:"to,omitempty"`     // and after
	Branch       string `msgpack:"branch,omitempty" json:"branch,omitempty"`

	ExperimentType ExperimentType `msgpack:"experiment_type,omitempty" json:"experiment_type,omitempty"` // enrolled, preference_study
	Preference     string         `msgpack:"preference,omitempty" json:"preference,omitempty"`           // enrolled, preference_study
	AddonID        string         `msgpack:"addon_id,omitempty" json:"addon_id,omitempty"`               // add-on study events
	AddonVersion   string         `msgpack:"addon_version,omitempty" json:"addon_version,omitempty"`     // add-on study events
	// Reason is the unenroll Reason, or the free-form enrollFailed reason.
	Reason     string `msgpack:"reason,omitempty" json:"reason,omitempty"`
	ResetValue bool   `msgpack:"reset_value,omitempty" json:"reset_value,omitempty"` // unenrolled, preference_study

	// studies_opt_out_changed
	StudiesEnabled bool `msgpack:"studies_enabled,omitempty" json:"studies_enabled,omitempty"`

	// uptake_reported of a recipe: the recipe's action and its arguments as the client
	// ran them (canonical JSON), so an audit sees what the client ran; Skipped is why
	// studyd decided nothing for it (the warning Firefox logged), if it did not.
	Action    string   `msgpack:"action,omitempty" json:"action,omitempty"`
	Arguments JSONText `msgpack:"arguments,omitempty" json:"arguments,omitempty"`
	Skipped   string   `msgpack:"skipped,omitempty" json:"skipped,omitempty"`

	// enrolled, unenrolled of a preference study: what Firefox kept of the branch.
	PreferenceType       string   `msgpack:"preference_type,omitempty" json:"preference_type,omitempty"`
	PreferenceBranchType string   `msgpack:"preference_branch_type,omitempty" json:"preference_branch_type,omitempty"`
	BranchValue          JSONText `msgpack:"branch_value,omitempty" json:"branch_value,omitempty"`
	// enrolled: the study's branches and ratios when the client enrolled, its target split.
	Ratios []recipe.Ratio `msgpack:"ratios,omitempty" json:"ratios,omitempty"`

	// FirefoxVersion is the major version of the Firefox whose command decided the
	// event (0: unversioned); the event's Telemetry shape is that version's.
	FirefoxVersion FirefoxVersion `msgpack:"firefox_version,omitempty" json:"firefox_version,omitempty"`
	// OriginalReason is unenrollFailed's: the reason the failed stop would have given.
	OriginalReason string `msgpack:"original_reason,omitempty" json:"original_reason,omitempty"`
}

// JSONText is a JSON value kept as its text (canonical where it comes from recipe
// arguments). In the log it is a string; in JSON output it is the value itself.
type JSONText string

// MarshalJSON writes the value itself (null when empty).
func (t JSONText) MarshalJSON() ([]byte, error) {
	if t == "" {
		return []byte("null"), nil
	}
	if !json.Valid([]byte(t)) {
		return json.Marshal(string(t)) // never produce invalid JSON from a bad log entry
	}
	return []byte(t), nil
}

// UnmarshalJSON keeps the value's text, compacted.
func (t *JSONText) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = ""
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	*t = JSONText(buf.String())
	return nil
}

// Study returns the study an enrollment event is about: a rollback's events are about
// the rollout it rolls back.
func (e Event) Study() StudyRef {
	if e.Object == PreferenceRollback {
		return StudyRef{Object: PreferenceRollout, Key: e.Key}
	}
	return StudyRef{Object: e.Object, Key: e.Key}
}

// Validate checks that an event read from the log is well formed for its type.
func (e Event) Validate() error {
	if _, err := ParseEventType(string(e.Type)); err != nil {
		return err
	}
	switch e.Type {
	case EventUptakeReported:
		kind, err := SourceKind(e.Source)
		if err != nil {
			return err
		}
		if statuses := StatusesFor(kind); !slices.Contains(statuses, e.Status) {
			// The name is made only for the error: a replay validates every event.
			_, err = parseEnum(kind+" status", string(e.Status), statuses)
		}
		return err
	case EventEnrolled, EventEnrollFailed, EventUnenrolled, EventUnenrollFailed, EventExpPrefChanged,
		EventUpdated, EventUpdateFailed, EventGraduated:
		if err := e.Study().Validate(); err != nil {
			return err
		}
		if e.Type == EventUnenrolled || (e.Type == EventGraduated && e.Reason != "") {
			_, err := ParseReason(e.Object, e.Reason)
			return err
		}
	}
	return nil
}

// Telemetry returns e as the Firefox that sent it would have: the seed's extras for
// an unversioned event (and the branch of a branched add-on study), and for a
// versioned one the extras its version sent (the rules in Rules: branch on a
// preference study's unenroll, changedPref, originalReason, enrollmentId, …). Values
// are truncated to 80 bytes as Firefox truncates them. It returns false for events
// that are not enrollment events.
func (e Event) Telemetry(client ClientID, at time.Time) (TelemetryEvent, bool) {
	method := e.Type.Method()
	if method == "" {
		return TelemetryEvent{}, false
	}
	v := e.FirefoxVersion
	extra := map[string]string{}
	switch {
	case method == MethodEnroll && e.Object == PreferenceStudy:
		extra[ExtraBranch] = e.Branch
		extra[ExtraExperimentType] = string(e.ExperimentType)
	case method == MethodEnroll && e.Object == AddonStudy:
		extra[ExtraAddonID] = orMarker(e.AddonID)
		extra[ExtraAddonVersion] = orMarker(e.AddonVersion)
	case method == MethodEnrollFailed:
		extra[ExtraReason] = e.Reason
		if e.Object == PreferenceStudy && e.Reason == "invalid-branch" && e.PreferenceBranchType != "" {
			extra[ExtraPrefBranch] = e.PreferenceBranchType
		}
		if e.Object == PreferenceRollout && e.Preference != "" {
			extra[ExtraPreference] = e.Preference
		}
	case method == MethodUnenroll && e.Object == PreferenceStudy:
		extra[ExtraDidResetValue] = DidResetValue(e.ResetValue)
		extra[ExtraReason] = e.Reason
		if v.Has(RuleUnenrollBranchExtra) && v != 0 {
			extra[ExtraBranch] = e.Branch
		}
		if v.Has(RuleChangedPrefExtra) && v != 0 && (e.Reason == string(ReasonUserPreferenceChanged) ||
			e.Reason == string(ReasonUserPreferenceChangedSideload)) {
			extra[ExtraChangedPref] = e.Preference
		}
	case method == MethodUnenroll && e.Object == AddonStudy:
		extra[ExtraAddonID] = orMarker(e.AddonID)
		extra[ExtraAddonVersion] = orMarker(e.AddonVersion)
		extra[ExtraReason] = e.Reason
	case method == MethodUnenroll, method == MethodUnenrollFailed, method == MethodUpdateFailed:
		extra[ExtraReason] = e.Reason
		if method == MethodUnenrollFailed && e.OriginalReason != "" && v.Has(RuleOriginalReason) {
			extra[ExtraOriginalReason] = e.OriginalReason
		}
	case method == MethodExpPrefChanged:
		extra[ExtraPreferenceName] = e.Preference
		extra[ExtraReason] = e.Reason
	case method == MethodUpdate && e.Object == AddonStudy:
		extra[ExtraAddonID] = orMarker(e.AddonID)
		extra[ExtraAddonVersion] = orMarker(e.AddonVersion)
	case method == MethodUpdate && e.Object == PreferenceRollout:
		extra[ExtraPreviousState] = e.From.Wire()
	case method == MethodGraduate:
		if v.Has(RuleGraduateReason) && e.Reason != "" {
			extra[ExtraReason] = e.Reason
		}
	}
	if e.Object == AddonStudy && e.Branch != "" && method != MethodEnrollFailed {
		// A branched add-on study (branched-addon-study) sends its branch, as Firefox's
		// BranchedAddonStudyAction did on enroll, update and unenroll; the 2018
		// opt-out-study had no branches, so its events have no branch extra.
		extra[ExtraBranch] = e.Branch
	}
	if v.Has(RuleEnrollmentIDExtra) && v != 0 && e.EnrollmentID != "" && method != MethodEnrollFailed && method != MethodExpPrefChanged {
		extra[ExtraEnrollmentID] = e.EnrollmentID
	}
	for k, val := range extra {
		extra[k] = Truncate(val, MaxTelemetryString)
	}
	return TelemetryEvent{
		ClientID:  client,
		Timestamp: at.UnixMilli(),
		Category:  TelemetryCategory,
		Method:    method,
		Object:    e.Object,
		Value:     Truncate(e.Slug, MaxTelemetryString),
		Extra:     extra,
	}, true
}

// orMarker is Firefox's __NO_ADDON__ for a study branch that installs no add-on.
func orMarker(v string) string {
	if v == "" {
		return NoAddon
	}
	return v
}

// String is a one-line description for logs and audits.
func (e Event) String() string {
	switch e.Type {
	case EventUptakeReported:
		return fmt.Sprintf("%s %s=%s", e.Type, e.Source, e.Status)
	case EventStudiesOptOutChanged:
		return fmt.Sprintf("%s studies_enabled=%t", e.Type, e.StudiesEnabled)
	}
	s := fmt.Sprintf("%s %s/%s %s→%s", e.Type, e.Object, e.Key, e.From, e.To)
	if e.Reason != "" {
		s += " reason=" + e.Reason
	}
	return s
}
