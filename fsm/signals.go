package fsm

import (
	"context"
	"fmt"
	"slices"

	"github.com/studyd/studyd/domain"
)

// optOut decides a change of the studies opt-out pref (app.shield.optoutstudies.enabled).
//
// Opting out (studies_enabled false) records the change and ends every enrolled add-on
// study with general-opt-out: in 2018 the pref observer stopped add-on studies only.
// Enrolled preference studies stay enrolled until the next run, where their action
// skips them and its finalize ends them with recipe-not-seen (later Firefox ended them
// at once with general-opt-out, a reason the seed does not list for preference studies).
// Opting back in records the change and restores nothing. A value equal to the current
// one decides no events.
//
// From the preference-study opt-out rule on (Firefox 65), opting out ends every enrolled
// study at once with general-opt-out, preference studies asking for a reset.
// Rollouts are not studies: the opt-out leaves them alone.
func (d *decider) optOut(ctx context.Context) error {
	disabled := !d.cmd.StudiesEnabled
	if disabled == d.state.StudiesDisabled {
		return nil
	}
	d.state.StudiesDisabled = disabled
	d.emit(domain.Event{Type: domain.EventStudiesOptOutChanged, StudiesEnabled: d.cmd.StudiesEnabled})
	if !disabled {
		return nil
	}
	objects := domain.AddonStudy
	if d.version != 0 && d.version.Has(domain.RulePrefStudyOptOut) {
		objects = "" // every study
	}
	return d.enrolled(objects, func(en domain.Enrollment) error {
		return d.end(ctx, en, domain.ReasonGeneralOptOut, en.Object == domain.PreferenceStudy)
	})
}

// studyRemoved decides the user's "Remove" of one study in about:studies. An enrolled
// add-on study ends with individual-opt-out; one already ended decides nothing
// (Firefox swallows its "already inactive" error); one the client never enrolled in is
// refused. A preference study is refused: the seed lists no individual-opt-out reason
// for preference studies (later Firefox added one).
//
// From the preference-study opt-out rule on (Firefox 65), a preference study can be
// removed: it ends with individual-opt-out (a reset is asked for); one not enrolled is
// Firefox's unenrollFailed (does-not-exist or already-unenrolled).
func (d *decider) studyRemoved(ctx context.Context) error {
	ref := *d.cmd.Study
	if ref.Object == domain.PreferenceStudy && d.version != 0 && d.version.Has(domain.RulePrefStudyOptOut) {
		if en, ok := d.state.Find(ref); ok && en.State == domain.StateEnrolled {
			return d.end(ctx, en, domain.ReasonIndividualOptOut, true)
		}
		return d.unenrollFailed(ctx, ref, domain.ReasonIndividualOptOut)
	}
	if ref.Object == domain.PreferenceStudy {
		return fmt.Errorf("%w: %s cannot be removed individually: individual-opt-out is not a %s unenroll reason in the seed "+
			"(allowed reasons: %v; use an unenroll command)", domain.ErrIllegalTransition, ref, domain.PreferenceStudy,
			domain.Reasons(domain.PreferenceStudy))
	}
	switch st := d.state.StateOf(ref); st {
	case domain.StateEnrolled:
		en, _ := d.state.Find(ref)
		return d.end(ctx, en, domain.ReasonIndividualOptOut, false)
	case domain.StateUnenrolled:
		return nil
	default:
		return fmt.Errorf("%w: %s is not a study of this client (state %s; only an enrolled study can be removed)",
			domain.ErrIllegalTransition, ref, st)
	}
}

// addonUninstalled decides the uninstall of an add-on: every enrolled add-on study that
// installed it ends with uninstalled, or uninstalled-sideload when the add-on was found
// missing at startup (removed while Normandy was inactive). An add-on no study
// installed decides nothing: most add-ons are not studies.
func (d *decider) addonUninstalled(ctx context.Context) error {
	reason := domain.ReasonUninstalled
	if d.cmd.Sideload {
		reason = domain.ReasonUninstalledSideload
	}
	return d.enrolled(domain.AddonStudy, func(en domain.Enrollment) error {
		if en.AddonID != d.cmd.AddonID {
			return nil
		}
		return d.end(ctx, en, reason, false)
	})
}

// prefChanged decides a user change of a preference: the enrolled preference study
// using it ends with user-preference-changed (or -sideload when the change happened
// while Normandy was inactive) and leaves the user's value (didResetValue "false").
// This is the 2018 rule; later Firefox kept the study and recorded the preference as
// overridden. A preference no study uses decides nothing.
//
// Current Firefox (the expPrefChanged rule) keeps the study instead: the preference is
// marked overridden and expPrefChanged is recorded (reason observer, or sideload), once
// per preference. The unenroll names the changed preference (changedPref, from the
// E2020 rule on).
func (d *decider) prefChanged(ctx context.Context) error {
	pref := d.cmd.Preference
	if d.version != 0 && d.version.Has(domain.RuleExpPrefChanged) {
		how := "observer"
		if d.cmd.Sideload {
			how = "sideload"
		}
		return d.enrolled(domain.PreferenceStudy, func(en domain.Enrollment) error {
			if !en.Uses(pref) || slices.Contains(en.Overridden, pref) {
				return nil
			}
			en.Overridden = append(slices.Clone(en.Overridden), pref)
			slices.Sort(en.Overridden)
			return d.transition(ctx, en, domain.Event{Type: domain.EventExpPrefChanged, Slug: en.Slug, EnrollmentID: en.EnrollmentID,
				Branch: en.Branch, Preference: pref, Reason: how})
		})
	}
	reason := domain.ReasonUserPreferenceChanged
	if d.cmd.Sideload {
		reason = domain.ReasonUserPreferenceChangedSideload
	}
	return d.enrolled(domain.PreferenceStudy, func(en domain.Enrollment) error {
		if !en.Uses(pref) {
			return nil
		}
		if err := d.end(ctx, en, reason, false); err != nil {
			return err
		}
		d.events[len(d.events)-1].Preference = pref // changedPref: the one the user changed
		return nil
	})
}

// unenroll decides an operator's end of one enrollment, with the command's reason
// (unknown when none is given, as Firefox's stop defaulted). A preference study asks
// for its preference to be reset, except for the reasons Firefox ended with the user's
// value left in place (user-preference-changed[-sideload]: didResetValue "false").
// Only an enrolled study can be ended.
func (d *decider) unenroll(ctx context.Context) error {
	ref := *d.cmd.Study
	en, ok := d.state.Find(ref)
	if !ok {
		en = domain.Enrollment{Object: ref.Object, Key: ref.Key} // the machine refuses unenroll from none
	}
	reason := d.cmd.Reason
	if reason == "" {
		reason = domain.ReasonUnknown
	}
	if ref.Object == domain.PreferenceStudy && en.State != domain.StateEnrolled && d.version != 0 &&
		d.version.Has(domain.RulePrefStudyUnenrollFailed) {
		// Firefox 65 and later: a stop of a preference study that is not active is an
		// unenrollFailed event, not a silent error.
		return d.unenrollFailed(ctx, ref, reason)
	}
	if err := d.end(ctx, en, reason, resetsValue(reason)); err != nil {
		return fmt.Errorf("only an enrolled study can be unenrolled: %w", err)
	}
	return nil
}

// resetsValue is the didResetValue Firefox sent with a preference study's unenroll
// reason: false where the user's change of the preference ended the study (the value
// is theirs), true otherwise.
func resetsValue(reason domain.Reason) bool {
	return reason != domain.ReasonUserPreferenceChanged && reason != domain.ReasonUserPreferenceChangedSideload
}
