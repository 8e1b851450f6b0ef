package simulate

import (
	"time"

	"github.com/studyd/studyd/domain"
)

// signalKind is a user's or operator's action between runs.
type signalKind int

const (
	signalPrefChanged signalKind = iota
	signalStudyRemoved
	signalAddonUninstalled
	signalOptOut
	signalUnenroll
	signalGraduated
)

// signalWeights are the relative frequencies of the signal kinds.
var signalWeights = []struct {
	kind   signalKind
	weight int
}{
	{signalPrefChanged, 35}, {signalStudyRemoved, 25}, {signalAddonUninstalled, 20},
	{signalOptOut, 8}, {signalUnenroll, 12}, {signalGraduated, 15},
}

// pSideload is the fraction of add-on uninstalls and pref changes that happened while
// Firefox was closed, found at the next startup.
const pSideload = 0.3

// signal builds client ci's signal at time at, aimed at its current state: a pref change
// of a preference its enrolled study set, the removal or uninstall of an enrolled add-on
// study, a flip of the opt-out pref, an operator's unenroll. It returns false when the
// drawn kind has no target (e.g. no enrolled add-on study): a real client would not
// send it either.
func (f *Fleet) signal(ci int, at time.Time) (domain.Command, bool) {
	c := &f.clients[ci]
	kind := f.drawSignal()
	v := c.version
	later := v != 0 && v.Has(domain.RulePrefStudyOptOut)
	var prefs, addons, all, removable, rollouts, endedPrefs []domain.Enrollment
	for _, en := range c.state.Active() {
		all = append(all, en)
		if en.Object == domain.PreferenceStudy {
			prefs = append(prefs, en)
			if later {
				removable = append(removable, en) // later about:studies removes preference studies too
			}
		} else if en.AddonID != "" {
			addons = append(addons, en)
			removable = append(removable, en)
		}
	}
	for _, en := range c.state.Enrollments {
		switch {
		case en.Object == domain.PreferenceRollout && en.State == domain.StateActive:
			rollouts = append(rollouts, en)
		case en.Object == domain.PreferenceStudy && en.State == domain.StateUnenrolled:
			endedPrefs = append(endedPrefs, en)
		}
	}
	pick := func(ens []domain.Enrollment) domain.Enrollment { return ens[f.rng.IntN(len(ens))] }
	switch kind {
	case signalPrefChanged:
		if len(prefs) == 0 {
			return domain.Command{}, false
		}
		en := pick(prefs)
		cmd := f.newCommand(ci, domain.CommandPrefChanged, at)
		cmd.Preference, cmd.Sideload = en.Preference, f.rng.Float64() < pSideload
		return cmd, true
	case signalStudyRemoved:
		if later && len(endedPrefs) > 0 && f.rng.Float64() < 0.1 {
			// The user removes a study that already ended (a stale about:studies page):
			// later Firefox records unenrollFailed.
			removable = endedPrefs
		}
		if len(removable) == 0 {
			return domain.Command{}, false
		}
		ref := pick(removable).Study()
		cmd := f.newCommand(ci, domain.CommandStudyRemoved, at)
		cmd.Study = &ref
		return cmd, true
	case signalAddonUninstalled:
		if len(addons) == 0 {
			return domain.Command{}, false
		}
		en := pick(addons)
		cmd := f.newCommand(ci, domain.CommandAddonUninstalled, at)
		cmd.AddonID, cmd.Sideload = en.AddonID, f.rng.Float64() < pSideload
		return cmd, true
	case signalOptOut:
		cmd := f.newCommand(ci, domain.CommandOptOut, at)
		cmd.StudiesEnabled = c.state.StudiesDisabled // flip it
		return cmd, true
	case signalGraduated:
		if len(rollouts) == 0 {
			return domain.Command{}, false
		}
		ref := pick(rollouts).Study()
		cmd := f.newCommand(ci, domain.CommandRolloutGraduated, at)
		cmd.Study = &ref
		if f.rng.Float64() < 0.3 {
			cmd.Reason = domain.ReasonGraduateInGraduationSet
		}
		return cmd, true
	default: // signalUnenroll
		if len(all) == 0 {
			return domain.Command{}, false
		}
		en := pick(all)
		ref := en.Study()
		cmd := f.newCommand(ci, domain.CommandUnenroll, at)
		cmd.Study = &ref
		switch u := f.rng.Float64(); {
		case u < 0.4:
			cmd.Reason = domain.ReasonUnknown
		case u < 0.6 && en.Object == domain.AddonStudy:
			cmd.Reason = domain.ReasonInstallFailure // the operator found the add-on broken
		}
		return cmd, true
	}
}

// drawSignal draws a signal kind by weight. Graduations are drawn only in fleets with
// versions (an unversioned client has no rollouts), so a seed fleet draws as before.
func (f *Fleet) drawSignal() signalKind {
	weights := signalWeights
	if len(f.cfg.Versions) == 0 {
		weights = weights[:len(weights)-1]
	}
	total := 0
	for _, w := range weights {
		total += w.weight
	}
	n := f.rng.IntN(total)
	for _, w := range weights {
		if n < w.weight {
			return w.kind
		}
		n -= w.weight
	}
	return signalUnenroll
}
