package domain

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/studyd/studyd/recipe"
)

// State is the lifecycle state of one enrollment; the fsm package holds the table of
// transitions between them.
type State string

// Enrollment states. StateNone is a study the client has never started.
const (
	StateNone         State = "none"
	StateEnrolled     State = "enrolled"
	StateUnenrolled   State = "unenrolled"
	StateEnrollFailed State = "enroll_failed"
)

// Rollout states (a preference rollout's own machine): active until rolled back or
// graduated; an update re-activates either.
const (
	StateActive     State = "active"
	StateRolledBack State = "rolled_back"
	StateGraduated  State = "graduated"
)

// States lists every state of a study enrollment; RolloutStates those of a rollout.
var (
	States        = []State{StateNone, StateEnrolled, StateUnenrolled, StateEnrollFailed}
	RolloutStates = []State{StateNone, StateActive, StateRolledBack, StateGraduated}
)

// Wire is the state as Firefox names it in telemetry (previousState): rolled-back.
func (s State) Wire() string {
	if s == StateRolledBack {
		return "rolled-back"
	}
	return string(s)
}

// ParseState accepts a known state.
func ParseState(v string) (State, error) {
	return parseEnum("state", v, []State{StateNone, StateEnrolled, StateUnenrolled, StateEnrollFailed, StateActive, StateRolledBack, StateGraduated})
}

// Enrollment is a client's record of one study: what Firefox keeps in its
// shield-preference-experiments.json or its addon-studies store, plus how it ended.
type Enrollment struct {
	Object         Object         `msgpack:"object" json:"object"`
	Key            string         `msgpack:"key" json:"key"`
	Slug           string         `msgpack:"slug" json:"slug"`
	Action         string         `msgpack:"action" json:"action"` // the action that owns it; only its finalize may end it
	EnrollmentID   string         `msgpack:"enrollment_id,omitempty" json:"enrollment_id,omitempty"`
	State          State          `msgpack:"state" json:"state"`
	Branch         string         `msgpack:"branch,omitempty" json:"branch,omitempty"`
	ExperimentType ExperimentType `msgpack:"experiment_type,omitempty" json:"experiment_type,omitempty"`
	Preference     string         `msgpack:"preference,omitempty" json:"preference,omitempty"`
	AddonID        string         `msgpack:"addon_id,omitempty" json:"addon_id,omitempty"`
	AddonVersion   string         `msgpack:"addon_version,omitempty" json:"addon_version,omitempty"`
	EnrolledAt     time.Time      `msgpack:"enrolled_at,omitempty" json:"enrolled_at,omitzero"`
	LastSeen       time.Time      `msgpack:"last_seen,omitempty" json:"last_seen,omitzero"`
	EndedAt        time.Time      `msgpack:"ended_at,omitempty" json:"ended_at,omitzero"`
	Reason         string         `msgpack:"reason,omitempty" json:"reason,omitempty"` // unenroll or enrollFailed reason
	Failures       int            `msgpack:"failures,omitempty" json:"failures,omitempty"`
	// What Firefox kept of a preference study's branch: the preference's type, the
	// branch it sets (user or default) and the value, as JSON.
	PreferenceType       string   `msgpack:"preference_type,omitempty" json:"preference_type,omitempty"`
	PreferenceBranchType string   `msgpack:"preference_branch_type,omitempty" json:"preference_branch_type,omitempty"`
	BranchValue          JSONText `msgpack:"branch_value,omitempty" json:"branch_value,omitempty"`
	// Ratios are the study's branches and ratios when the client enrolled.
	Ratios []recipe.Ratio `msgpack:"ratios,omitempty" json:"ratios,omitempty"`
	// TemporaryErrorDeadline is when a study whose recipe keeps failing temporarily
	// ends (Firefox 65 and later); zero when its recipe last matched.
	TemporaryErrorDeadline time.Time `msgpack:"temporary_error_deadline,omitempty" json:"temporary_error_deadline,omitzero"`
	// Preferences are every preference a multi-preference-experiment branch sets
	// (Preference is the first); Overridden those the user changed while the study
	// stayed enrolled (current Firefox's expPrefChanged).
	Preferences []string `msgpack:"preferences,omitempty" json:"preferences,omitempty"`
	Overridden  []string `msgpack:"overridden,omitempty" json:"overridden,omitempty"`
}

// Uses reports whether the enrollment sets preference p.
func (e Enrollment) Uses(p string) bool {
	return e.Preference == p || slices.Contains(e.Preferences, p)
}

// Study returns the enrollment's study reference.
func (e Enrollment) Study() StudyRef { return StudyRef{Object: e.Object, Key: e.Key} }

// ClientState is everything studyd knows about one client: every commit carries the
// client's resulting state, so loading a client is reading its last commit.
type ClientState struct {
	Client ClientID `msgpack:"client" json:"client_id"`
	// StudiesDisabled is true while the client has opted out of studies.
	StudiesDisabled bool `msgpack:"studies_disabled,omitempty" json:"studies_disabled,omitempty"`
	// LastRunAt is the time of the newest recipe run applied; older runs are stale.
	LastRunAt time.Time `msgpack:"last_run_at,omitempty" json:"last_run_at,omitzero"`
	// Enrollments are sorted by object, then key, so the encoding is canonical.
	Enrollments []Enrollment `msgpack:"enrollments" json:"enrollments"`
}

// Find returns the client's enrollment in study s.
func (c ClientState) Find(s StudyRef) (Enrollment, bool) {
	i, ok := c.index(s)
	if !ok {
		return Enrollment{}, false
	}
	return c.Enrollments[i], true
}

// StateOf returns the state of study s, StateNone if the client never started it.
func (c ClientState) StateOf(s StudyRef) State {
	if e, ok := c.Find(s); ok {
		return e.State
	}
	return StateNone
}

// With returns a copy of c in which e replaces the enrollment of the same study (or is
// added in sorted position). c itself is not changed.
func (c ClientState) With(e Enrollment) ClientState {
	out := c
	out.Enrollments = slices.Clone(c.Enrollments)
	i, ok := c.index(e.Study())
	if ok {
		out.Enrollments[i] = e
	} else {
		out.Enrollments = slices.Insert(out.Enrollments, i, e)
	}
	return out
}

// Active returns the client's enrolled studies in canonical order.
func (c ClientState) Active() []Enrollment {
	var out []Enrollment
	for _, e := range c.Enrollments {
		if e.State == StateEnrolled {
			out = append(out, e)
		}
	}
	return out
}

func (c ClientState) index(s StudyRef) (int, bool) {
	return slices.BinarySearchFunc(c.Enrollments, s, func(e Enrollment, s StudyRef) int {
		return cmp.Or(cmp.Compare(e.Object, s.Object), cmp.Compare(e.Key, s.Key))
	})
}

// Validate checks the invariants a state read from the log must hold.
func (c ClientState) Validate() error {
	if err := c.Client.Validate(); err != nil {
		return err
	}
	for i, e := range c.Enrollments {
		if _, err := ParseState(string(e.State)); err != nil {
			return fmt.Errorf("enrollments[%d]: %w", i, err)
		}
		if i > 0 && cmp.Or(cmp.Compare(c.Enrollments[i-1].Object, e.Object), cmp.Compare(c.Enrollments[i-1].Key, e.Key)) >= 0 {
			return fmt.Errorf("%w: enrollments are not sorted and unique at %d (%s)", ErrInvalid, i, e.Study())
		}
	}
	return nil
}
