package fsm

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/studyd/studyd/domain"
)

// Decision is what one command does to one client: the events to record, in order, and
// the client's state after them. Both go into one commit.
type Decision struct {
	Events []domain.Event
	State  domain.ClientState
}

// Decide returns what cmd does to a client in state s. It is pure: time comes from
// cmd.At, and the same state and command always give the same decision, so a retry
// after a conflict or a replay decides exactly as the first time.
//
// A command is validated first (errors wrap domain.ErrInvalid). A state with no client
// is a new client and takes cmd.ClientID; a command for another client is invalid.
// Every enrollment event's From and To come from firing the transition table. A
// command the client's state does not allow returns an error wrapping
// domain.ErrIllegalTransition, and a recipe run older than the newest applied one an
// error wrapping domain.ErrStaleRun; no events are decided then. ctx is passed to the
// state machine, which fails a transition with ctx's error once ctx is done; Decide
// never blocks.
func Decide(ctx context.Context, s domain.ClientState, cmd domain.Command) (Decision, error) {
	if err := cmd.Validate(); err != nil {
		return Decision{}, fmt.Errorf("decide %s: %w", cmd.Type, err)
	}
	switch {
	case s.Client == "":
		s.Client = cmd.ClientID
	case s.Client != cmd.ClientID:
		return Decision{}, fmt.Errorf("decide %s: %w: command is for client %q, state is client %q",
			cmd.Type, domain.ErrInvalid, cmd.ClientID, s.Client)
	}
	// The decider owns a copy of the enrollments, so it can update them in place
	// without touching the caller's state.
	s.Enrollments = slices.Clone(s.Enrollments)
	d := &decider{cmd: cmd, state: s, version: cmd.Version(),
		events: make([]domain.Event, 0, 1+len(cmd.Actions)+2*len(cmd.Recipes)+len(s.Enrollments))}
	var err error
	switch cmd.Type {
	case domain.CommandRecipeRun:
		err = d.recipeRun(ctx)
	case domain.CommandOptOut:
		err = d.optOut(ctx)
	case domain.CommandStudyRemoved:
		err = d.studyRemoved(ctx)
	case domain.CommandAddonUninstalled:
		err = d.addonUninstalled(ctx)
	case domain.CommandPrefChanged:
		err = d.prefChanged(ctx)
	case domain.CommandUnenroll:
		err = d.unenroll(ctx)
	case domain.CommandRolloutGraduated:
		err = d.rolloutGraduated(ctx)
	default: // Validate accepts only known types; this guards a type added without a rule.
		err = fmt.Errorf("%w: no decision rule for command type %q", domain.ErrUnknownCommandType, cmd.Type)
	}
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: %w", cmd.Type, err)
	}
	if len(d.events) == 0 {
		d.events = nil
	}
	return Decision{Events: d.events, State: d.state}, nil
}

// decider accumulates one command's events and the state they lead to.
type decider struct {
	cmd     domain.Command
	version domain.FirefoxVersion // the command's Firefox: whose rules decide it
	state   domain.ClientState
	events  []domain.Event
}

// emit records an event that is not an enrollment transition.
func (d *decider) emit(e domain.Event) {
	e.FirefoxVersion = d.version
	d.events = append(d.events, e)
}

// transition fires ev's method on enrollment en, records ev with the From and To the
// machine of en's object gives, and stores en in that state. ev.Object, if set, is the
// object the event is sent as (a rollback's events are about its rollout).
func (d *decider) transition(ctx context.Context, en domain.Enrollment, ev domain.Event) error {
	from := d.state.StateOf(en.Study())
	to, err := machineFor(en.Object).fire(ctx, from, ev.Type.Method())
	if err != nil {
		return fmt.Errorf("%s: %w", en.Study(), err)
	}
	if ev.Object == "" {
		ev.Object = en.Object
	}
	ev.Key, ev.From, ev.To = en.Key, from, to
	ev.FirefoxVersion = d.version
	en.State = to
	d.events = append(d.events, ev)
	if to != domain.StateNone { // a rollout that failed to enroll is not stored
		d.put(en)
	}
	return nil
}

// enrolled calls fn with each enrolled study of object o (any object if o is empty),
// in canonical order, stopping at fn's first error. fn may end the study it is given:
// ending replaces an enrollment in place, so the iteration is unaffected.
func (d *decider) enrolled(o domain.Object, fn func(en domain.Enrollment) error) error {
	for i := range d.state.Enrollments {
		en := d.state.Enrollments[i]
		if en.State != domain.StateEnrolled || (o != "" && en.Object != o) {
			continue
		}
		if err := fn(en); err != nil {
			return err
		}
	}
	return nil
}

// put stores en in the decider's own copy of the enrollments, in canonical order (as
// domain.ClientState.With does, without copying the slice for every change).
func (d *decider) put(en domain.Enrollment) {
	i, found := slices.BinarySearchFunc(d.state.Enrollments, en.Study(), func(e domain.Enrollment, s domain.StudyRef) int {
		return cmp.Or(cmp.Compare(e.Object, s.Object), cmp.Compare(e.Key, s.Key))
	})
	if found {
		d.state.Enrollments[i] = en
		return
	}
	d.state.Enrollments = slices.Insert(d.state.Enrollments, i, en)
}

// enroll starts enrollment en (its study fields filled in) at the command's time.
func (d *decider) enroll(ctx context.Context, en domain.Enrollment) error {
	if prev, ok := d.state.Find(en.Study()); ok {
		en.Failures = prev.Failures // the history of failed installs survives the enrollment
	}
	en.EnrollmentID = domain.EnrollmentID(d.state.Client, en.Study(), d.cmd.CommandID)
	en.EnrolledAt, en.LastSeen = d.cmd.At, d.cmd.At
	en.EndedAt, en.Reason = time.Time{}, "" // a failed install's reason is history once enrolled
	// The study's split is the event's to record (the study views fold it from there);
	// kept in the state too, it was rewritten by every later commit of the client: up to
	// 64 branches × 128-byte slugs a study, a few megabytes a commit.
	ratios := en.Ratios
	en.Ratios = nil
	return d.transition(ctx, en, domain.Event{
		Type:           domain.EventEnrolled,
		Slug:           en.Slug,
		EnrollmentID:   en.EnrollmentID,
		Branch:         en.Branch,
		ExperimentType: en.ExperimentType,
		Preference:     en.Preference,
		AddonID:        en.AddonID,
		AddonVersion:   en.AddonVersion,

		PreferenceType:       en.PreferenceType,
		PreferenceBranchType: en.PreferenceBranchType,
		BranchValue:          en.BranchValue,
		Ratios:               ratios,
	})
}

// enrollFailed records a failed start of study en with the client's reason; ev holds
// the event's other extras (prefBranch, preference), if any.
func (d *decider) enrollFailed(ctx context.Context, en domain.Enrollment, reason string, ev ...domain.Event) error {
	if prev, ok := d.state.Find(en.Study()); ok {
		en.Failures = prev.Failures
	}
	en.Failures++
	// The state keeps a bounded reason (what Telemetry keeps); the event has it whole.
	en.Reason = domain.Truncate(reason, domain.MaxStateReason)
	e := domain.Event{}
	if len(ev) > 0 {
		e = ev[0]
	}
	e.Type, e.Slug, e.Reason = domain.EventEnrollFailed, en.Slug, reason
	return d.transition(ctx, en, e)
}

// unenrollFailed records a stop of study ref that found no enrolled study: Firefox's
// does-not-exist or already-unenrolled, with the reason the stop would have given.
func (d *decider) unenrollFailed(ctx context.Context, ref domain.StudyRef, original domain.Reason) error {
	en, ok := d.state.Find(ref)
	reason := "already-unenrolled"
	if !ok || en.State != domain.StateUnenrolled {
		reason = "does-not-exist" // Firefox keeps no record of a study that never started
	}
	if !ok {
		en = domain.Enrollment{Object: ref.Object, Key: ref.Key, Slug: ref.Key}
	}
	from := en.State
	if !ok {
		from = domain.StateNone
	}
	// A failed stop changes nothing: the event is recorded, the enrollment is not
	// touched (a study never started stays without a record).
	to, err := machineFor(ref.Object).fire(ctx, from, domain.MethodUnenrollFailed)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	d.events = append(d.events, domain.Event{Type: domain.EventUnenrollFailed, Object: ref.Object, Key: ref.Key, Slug: en.Slug,
		EnrollmentID: en.EnrollmentID, From: from, To: to, Reason: reason, OriginalReason: string(original), FirefoxVersion: d.version})
	return nil
}

// end unenrolls en with reason. resetValue is the requested didResetValue of a
// preference study (what Firefox asked for, not whether anything changed); it is
// always false for add-on studies, whose telemetry has no such extra.
func (d *decider) end(ctx context.Context, en domain.Enrollment, reason domain.Reason, resetValue bool) error {
	en.EndedAt = d.cmd.At
	en.Reason = string(reason)
	en.TemporaryErrorDeadline = time.Time{}
	return d.transition(ctx, en, domain.Event{
		Type:         domain.EventUnenrolled,
		Slug:         en.Slug,
		EnrollmentID: en.EnrollmentID,
		Branch:       en.Branch,
		Preference:   en.Preference,
		AddonID:      en.AddonID,
		AddonVersion: en.AddonVersion,
		Reason:       string(reason),
		ResetValue:   resetValue && en.Object == domain.PreferenceStudy,

		PreferenceType:       en.PreferenceType,
		PreferenceBranchType: en.PreferenceBranchType,
		BranchValue:          en.BranchValue,
	})
}
