package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
)

// ver returns c as sent by Firefox v ("<v>.0"); 0 leaves it unversioned. From the
// current era on it has that era's shape (currentShape).
func ver(v domain.FirefoxVersion, c domain.Command) domain.Command {
	if v != 0 {
		c.FirefoxVersion = fmt.Sprintf("%d.0", v)
	}
	return currentShape(v, c)
}

// currentShape is c as current Firefox (no execution uptake) reports it: no action
// statuses, no status for a matching recipe, nothing for a recipe of a disabled action.
func currentShape(v domain.FirefoxVersion, c domain.Command) domain.Command {
	if v == 0 || v.Has(domain.RuleExecutionUptake) || c.Type != domain.CommandRecipeRun {
		return c
	}
	c.Actions = nil
	var rs []domain.RecipeReport
	for _, r := range c.Recipes {
		switch r.Status {
		case domain.RecipeActionDisabled:
			continue
		case domain.RecipeSuccess, domain.RecipeExecutionError:
			r.Status = ""
		}
		rs = append(rs, r)
	}
	c.Recipes = rs
	return c
}

// vers is ver over several commands.
func vers(v domain.FirefoxVersion, cs ...domain.Command) []domain.Command {
	out := make([]domain.Command, len(cs))
	for i, c := range cs {
		out[i] = ver(v, c)
	}
	return out
}

// outcome decides cmds in order and describes the last one: "invalid" or "illegal" if
// it is refused, else the String form of its non-uptake events joined by "; ", or
// "skipped <note>" for a skipped recipe, or "nothing".
func outcome(t *testing.T, cmds ...domain.Command) (string, fsm.Decision) {
	t.Helper()
	s := apply(t, cmds[:len(cmds)-1]...)
	d, err := fsm.Decide(context.Background(), s, cmds[len(cmds)-1])
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return "invalid", d
	case errors.Is(err, domain.ErrIllegalTransition):
		return "illegal", d
	case err != nil:
		t.Fatalf("decide: %v", err)
	}
	if tr := transitions(d.Events); len(tr) > 0 {
		return strings.Join(tr, "; "), d
	}
	if sk := skips(d.Events); len(sk) > 0 {
		return "skipped " + strings.Join(sk, "; "), d
	}
	return "nothing", d
}

// extraOf returns the extra key of the first telemetry event of d with method m, or
// "no <m>" when there is none, or "absent" when the event lacks the key.
func extraOf(d fsm.Decision, m domain.Method, key string) string {
	for _, e := range d.Events {
		te, ok := e.Telemetry(client, t0)
		if !ok || te.Method != m {
			continue
		}
		if v, ok := te.Extra[key]; ok {
			return v
		}
		return "absent"
	}
	return "no " + string(m)
}

func multiRecipe(id domain.RecipeID, slug string) domain.RecipeReport {
	pref := func(name string, v string) recipe.BranchPreference {
		return recipe.BranchPreference{PreferenceType: "boolean", PreferenceBranchType: "default", PreferenceValue: []byte(v)}
	}
	return domain.RecipeReport{ID: id, Action: "multi-preference-experiment", Status: domain.RecipeSuccess,
		Arguments: recipe.Must(recipe.Study{Slug: slug, Branches: []recipe.Branch{
			{Slug: "control", Ratio: 1, Preferences: map[string]recipe.BranchPreference{"m.a": pref("m.a", "false"), "m.b": pref("m.b", "false")}},
			{Slug: "treatment", Ratio: 1, Preferences: map[string]recipe.BranchPreference{"m.a": pref("m.a", "true"), "m.b": pref("m.b", "true")}},
		}})}
}

// branchedRecipe is a branched-addon-study recipe with the given branches (extensionApiId
// 0 means a branch without an add-on) and the install outcome the client adds.
func branchedRecipe(id domain.RecipeID, status domain.UptakeStatus, addonID, version string, branches ...recipe.Branch) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: "branched-addon-study", Status: status, Arguments: recipe.Must(recipe.Study{
		Slug: "branched", Branches: branches, AddonID: addonID, AddonVersion: version})}
}

func withAddon(slug string, ratio uint64, api int) recipe.Branch {
	return recipe.Branch{Slug: slug, Ratio: ratio, ExtensionAPIID: []byte(fmt.Sprint(api))}
}

func rolloutRecipe(id domain.RecipeID, slug string, prefs ...recipe.RolloutPreference) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: "preference-rollout", Status: domain.RecipeSuccess,
		Arguments: recipe.Must(recipe.Study{Slug: slug, RolloutPreferences: prefs})}
}

func rollbackRecipe(id domain.RecipeID, slug string) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: "preference-rollback", Status: domain.RecipeSuccess,
		Arguments: recipe.Must(recipe.Study{RolloutSlug: slug})}
}

func rp(name, value string) recipe.RolloutPreference {
	return recipe.RolloutPreference{PreferenceName: name, Value: []byte(value)}
}

func graduated(h int, slug string, reason domain.Reason) domain.Command {
	return domain.Command{Type: domain.CommandRolloutGraduated, CommandID: nextID(), ClientID: client, At: at(h),
		Study: &domain.StudyRef{Object: domain.PreferenceRollout, Key: slug}, Reason: reason}
}

func rolloutActions() []domain.ActionReport {
	return okActions(prefAction, addonAct, "preference-rollout", "preference-rollback")
}

// boundaries are the versions a rule is tested at: just before its first release, at
// it, at its last (the highest version for a rule still in Firefox) and just after.
func boundaries(r domain.Rule) []domain.FirefoxVersion {
	var out []domain.FirefoxVersion
	if r.First > 1 {
		out = append(out, r.First-1, r.First)
	} else {
		out = append(out, 1)
	}
	if r.Last == 0 {
		out = append(out, domain.MaxFirefoxVersion)
	} else {
		out = append(out, r.Last, r.Last+1)
	}
	return append(out, 0) // and unversioned
}

// TestRulesAtTheirBoundaries decides, for every rule of domain.Rules, one scenario that
// tells whether the rule applied, at the rule's boundaries (just before its first
// version, at it, at its last, just after) and unversioned.
func TestRulesAtTheirBoundaries(t *testing.T) {
	t.Parallel()
	enrolledPref := func(v domain.FirefoxVersion) []domain.Command {
		return vers(v, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))
	}
	first := func(s string) string { s, _, _ = strings.Cut(s, "; "); return s }
	cases := []struct {
		rule domain.RuleID
		// scenario returns what the rule's decision looked like under Firefox v.
		scenario      func(t *testing.T, v domain.FirefoxVersion) string
		with, without string
		// unversioned, if set, is the outcome of an unversioned command, where it is
		// neither: a later status is accepted and tallied, never refused.
		unversioned string
	}{
		{rule: domain.RuleSeedOnlyStatuses,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				c := run(1, nil)
				c.RunnerStatus = domain.RunnerNetworkError
				o, _ := outcome(t, ver(v, c))
				return o
			},
			with: "nothing", without: "invalid"},
		{rule: domain.RuleExecutionUptake,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				c := run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))
				if v != 0 {
					c.FirefoxVersion = fmt.Sprintf("%d.0", v) // as given: with action statuses and RECIPE_SUCCESS
				}
				o, _ := outcome(t, c)
				return o
			},
			with: "enrolled preference_study/pref-a none→enrolled", without: "invalid"},
		{rule: domain.RuleFilterStatuses,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, ver(v, run(1, nil, domain.RecipeReport{ID: 9, Action: "console-log", Status: domain.RecipeDidntMatchFilter})))
				return o
			},
			with: "nothing", without: "invalid", unversioned: "nothing"},
		{rule: domain.RuleSuitabilityStatuses,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, ver(v, run(1, nil, domain.RecipeReport{ID: 9, Action: "console-log", Status: domain.RecipeInvalidSignature})))
				return o
			},
			with: "nothing", without: "invalid", unversioned: "nothing"},
		{rule: domain.RuleSuitabilityUnenroll,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				bad := edit(prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), func(a *recipe.Study) { a.Branches = nil })
				o, _ := outcome(t, append(enrolledPref(v), ver(v, run(2, both(), bad)))...)
				return o
			},
			with: "unenrolled preference_study/pref-a enrolled→unenrolled reason=arguments-invalid", without: "nothing"},
		{rule: domain.RuleTemporaryErrorDeadline,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, append(enrolledPref(v), ver(v, run(2, both())))...)
				return o
			},
			with: "nothing", without: "unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen"},
		{rule: domain.RulePrefStudyOptOut,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, append(enrolledPref(v), ver(v, optOut(2, false)))...)
				return o
			},
			with:    "studies_opt_out_changed studies_enabled=false; unenrolled preference_study/pref-a enrolled→unenrolled reason=general-opt-out",
			without: "studies_opt_out_changed studies_enabled=false"},
		{rule: domain.RulePrefStudyEnrollFailed,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				r := edit(prefRecipe(1, "pref-a", "browser.a", domain.RecipeExecutionError), func(a *recipe.Study) { a.EnrollError = "invalid-type" })
				o, _ := outcome(t, ver(v, run(1, both(), r)))
				return first(o)
			},
			with: "enroll_failed preference_study/pref-a none→enroll_failed reason=invalid-type", without: "skipped normandy/recipe/1 enrollError \"invalid-type\""},
		{rule: domain.RulePrefStudyUnenrollFailed,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, ver(v, unenroll(1, P, "pref-x", "")))
				return o
			},
			with: "unenroll_failed preference_study/pref-x none→none reason=does-not-exist", without: "illegal"},
		{rule: domain.RuleOriginalReason,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, ver(v, unenroll(1, P, "pref-x", "")))
				return extraOf(d, domain.MethodUnenrollFailed, "originalReason")
			},
			with: "unknown", without: "absent", unversioned: "no unenrollFailed"},
		{rule: domain.RuleUserPrefChangedUnenroll,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, append(enrolledPref(v), ver(v, prefChanged(2, "browser.a", false)))...)
				return first(o)
			},
			with: "unenrolled preference_study/pref-a enrolled→unenrolled reason=user-preference-changed", without: "exp_pref_changed preference_study/pref-a enrolled→enrolled reason=observer"},
		{rule: domain.RuleChangedPrefExtra,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, append(enrolledPref(v), ver(v, prefChanged(2, "browser.a", true)))...)
				if x := extraOf(d, domain.MethodUnenroll, "changedPref"); x != "browser.a" {
					return "no changedPref"
				}
				return "changedPref"
			},
			with: "changedPref", without: "no changedPref"},
		{rule: domain.RuleExpPrefChanged,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, append(enrolledPref(v), ver(v, prefChanged(2, "browser.a", true)))...)
				return extraOf(d, domain.MethodExpPrefChanged, "reason")
			},
			with: "sideload", without: "no expPrefChanged"},
		{rule: domain.RuleUnenrollBranchExtra,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, append(enrolledPref(v), ver(v, unenroll(2, P, "pref-a", "")))...)
				if extraOf(d, domain.MethodUnenroll, "branch") == "absent" {
					return "no branch"
				}
				return "branch"
			},
			with: "branch", without: "no branch"},
		{rule: domain.RuleMultiPreference,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, ver(v, run(1, okActions("multi-preference-experiment"), multiRecipe(1, "multi"))))
				if strings.HasPrefix(o, "skipped") {
					return "skipped"
				}
				return o
			},
			with: "enrolled preference_study/multi none→enrolled", without: "skipped"},
		{rule: domain.RuleBranchedAddon,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				r := branchedRecipe(50, domain.RecipeSuccess, "", "", recipe.Branch{Slug: "control", Ratio: 1})
				o, d := outcome(t, ver(v, run(1, okActions("branched-addon-study"), r)))
				if strings.HasPrefix(o, "skipped") {
					return "skipped"
				}
				return o + " addonId=" + extraOf(d, domain.MethodEnroll, "addonId")
			},
			with: "enrolled addon_study/50 none→enrolled addonId=__NO_ADDON__", without: "skipped"},
		{rule: domain.RuleEnrollmentIDExtra,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, enrolledPref(v)...)
				if extraOf(d, domain.MethodEnroll, "enrollmentId") == "absent" {
					return "no enrollmentId"
				}
				return "enrollmentId"
			},
			with: "enrollmentId", without: "no enrollmentId"},
		{rule: domain.RulePreferenceRollouts,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				o, _ := outcome(t, ver(v, run(1, rolloutActions(), rolloutRecipe(7, "ro", rp("r.a", "true")))))
				return o
			},
			with: "enrolled preference_rollout/ro none→active", without: "nothing"},
		{rule: domain.RuleGraduateReason,
			scenario: func(t *testing.T, v domain.FirefoxVersion) string {
				_, d := outcome(t, append(vers(v, run(1, rolloutActions(), rolloutRecipe(7, "ro", rp("r.a", "true")))),
					ver(v, graduated(2, "ro", domain.ReasonGraduateInGraduationSet)))...)
				return extraOf(d, domain.MethodGraduate, "reason")
			},
			with: "in-graduation-set", without: "absent", unversioned: "no graduate"}, // no rollouts unversioned: graduate is refused
	}
	tested := map[domain.RuleID]bool{}
	for _, tc := range cases {
		tested[tc.rule] = true
		rule := domain.RuleFor(tc.rule)
		for _, v := range boundaries(rule) {
			t.Run(fmt.Sprintf("%s/firefox-%s", tc.rule, v), func(t *testing.T) {
				want := tc.without
				if v.Has(tc.rule) {
					want = tc.with
				}
				if v == 0 && tc.unversioned != "" {
					want = tc.unversioned
				}
				if tc.rule == domain.RulePreferenceRollouts && v == 0 {
					want = "nothing" // the seed has no rollouts: an unversioned run records their uptake only
				}
				if got := tc.scenario(t, v); got != want {
					t.Errorf("Firefox %s (rule %s: %s): got %q, want %q", v, tc.rule, rule.Versions(), got, want)
				}
			})
		}
	}
	for _, r := range domain.Rules {
		if !tested[r.ID] {
			t.Errorf("rule %s has no boundary test", r.ID)
		}
	}
}

// TestUnversionedAcceptsLaterStatusesAndReasons: a command that does not say its
// version follows the 2018 rules, but a status or reason only a later client sent is
// recorded and tallied as reported, never refused.
func TestUnversionedAcceptsLaterStatusesAndReasons(t *testing.T) {
	t.Parallel()
	for _, st := range domain.LaterRecipeStatuses {
		o, d := outcome(t, append([]domain.Command{run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))},
			run(2, both(), prefRecipe(1, "pref-a", "browser.a", st)))...)
		// 2018 rules: a recipe that was not executed is not seen, so finalize ends it.
		if o != "unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen" {
			t.Errorf("%s: got %q, want the 2018 recipe-not-seen", st, o)
		}
		if !slices.ContainsFunc(d.Events, func(e domain.Event) bool { return e.Status == st && e.Source == "normandy/recipe/1" }) {
			t.Errorf("%s: not recorded as reported", st)
		}
		// The same status from Firefox 64 is refused: that client could not send it.
		if o, _ := outcome(t, ver(64, run(1, both(), prefRecipe(1, "pref-a", "browser.a", st)))); o != "invalid" {
			t.Errorf("%s from Firefox 64: got %q, want invalid", st, o)
		}
	}
	for _, o := range []domain.Object{P, A} {
		for _, r := range domain.LaterReasons(o) {
			key := "pref-a"
			setup := run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))
			if o == A {
				key, setup = "101", run(1, both(), addonRecipe(101, "addon-a", "a@shield"))
			}
			got, _ := outcome(t, setup, unenroll(2, o, key, r))
			if want := fmt.Sprintf("unenrolled %s/%s enrolled→unenrolled reason=%s", o, key, r); got != want {
				t.Errorf("unversioned unenroll %s %s: got %q, want %q", o, r, got, want)
			}
			rule, _ := domain.ReasonRule(o, r)
			before := domain.RuleFor(rule).First - 1
			if got, _ := outcome(t, ver(before, setup), ver(before, unenroll(2, o, key, r))); got != "invalid" {
				t.Errorf("Firefox %s unenroll %s %s: got %q, want invalid (rule %s)", before, o, r, got, rule)
			}
		}
	}
}

func TestUnversionedKnowsNoRollouts(t *testing.T) {
	t.Parallel()
	o, _ := outcome(t, run(1, rolloutActions(), rolloutRecipe(7, "ro", rp("r.a", "true"))))
	if o != "nothing" {
		t.Errorf("got %q, want nothing: the seed has no rollouts", o)
	}
	if o, _ := outcome(t, ver(57, graduated(1, "ro", ""))); o != "invalid" {
		t.Errorf("graduate from Firefox 57: got %q, want invalid", o)
	}
}

// TestTemporaryErrorDeadline: a temporary error sets a deadline a week on; errors
// before it change nothing; a matching run clears it; an error after it ends the study
// with the error's reason.
func TestTemporaryErrorDeadline(t *testing.T) {
	t.Parallel()
	const v = 80
	recipe := func(st domain.UptakeStatus) domain.RecipeReport { return prefRecipe(1, "pref-a", "browser.a", st) }
	enrolled := ver(v, run(1, both(), recipe(domain.RecipeSuccess)))
	week := 7 * 24
	tests := []struct {
		name string
		cmds []domain.Command
		want string
	}{
		{name: "first signature error sets the deadline", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeInvalidSignature))}, want: "nothing"},
		{name: "error at the deadline changes nothing", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeInvalidSignature)),
			run(2+week, both(), recipe(domain.RecipeInvalidSignature))}, want: "nothing"},
		{name: "error after the deadline ends with signature-error", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeInvalidSignature)),
			run(3+week, both(), recipe(domain.RecipeInvalidSignature))}, want: "unenrolled preference_study/pref-a enrolled→unenrolled reason=signature-error"},
		{name: "broken filter after the deadline ends with filter-error", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeFilterBroken)),
			run(3+week, both(), recipe(domain.RecipeFilterBroken))}, want: "unenrolled preference_study/pref-a enrolled→unenrolled reason=filter-error"},
		{name: "a matching run clears the deadline", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeInvalidSignature)),
			run(3, both(), recipe(domain.RecipeSuccess)), run(3+week, both(), recipe(domain.RecipeInvalidSignature))}, want: "nothing"},
		{name: "no recipes after the deadline ends with no-recipes", cmds: []domain.Command{enrolled, run(2, both()), run(3+week, both())},
			want: "unenrolled preference_study/pref-a enrolled→unenrolled reason=no-recipes"},
		{name: "capability mismatch ends at once", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeIncompatibleCapabilities))},
			want: "unenrolled preference_study/pref-a enrolled→unenrolled reason=capability-mismatch"},
		{name: "filter mismatch ends at once, not as recipe-not-seen", cmds: []domain.Command{enrolled, run(2, both(), recipe(domain.RecipeDidntMatchFilter))},
			want: "unenrolled preference_study/pref-a enrolled→unenrolled reason=filter-mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, _ := outcome(t, vers(v, tt.cmds...)...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLaterPreferenceStudies covers the later preference-study rules beyond their
// boundaries: multi-preference enrollments, overridden preferences, removal and stop
// failures, and the Telemetry shape each version sent.
func TestLaterPreferenceStudies(t *testing.T) {
	t.Parallel()
	multi := vers(100, run(1, okActions("multi-preference-experiment"), multiRecipe(1, "multi")))
	s := apply(t, multi...)
	en, _ := s.Find(domain.StudyRef{Object: P, Key: "multi"})
	if diff := cmp.Diff([]string{"m.a", "m.b"}, en.Preferences); diff != "" {
		t.Errorf("multi-preference enrollment preferences (-want +got):\n%s", diff)
	}
	// The second preference changed: overridden once, the study stays.
	o, d := outcome(t, append(multi, ver(100, prefChanged(2, "m.b", false)))...)
	if o != "exp_pref_changed preference_study/multi enrolled→enrolled reason=observer" || extraOf(d, domain.MethodExpPrefChanged, "preferenceName") != "m.b" {
		t.Errorf("got %q (preferenceName %q), want one expPrefChanged for m.b", o, extraOf(d, domain.MethodExpPrefChanged, "preferenceName"))
	}
	if o, _ := outcome(t, append(multi, ver(100, prefChanged(2, "m.b", false)), ver(100, prefChanged(3, "m.b", false)))...); o != "nothing" {
		t.Errorf("second change of an overridden preference: got %q, want nothing", o)
	}
	// A multi-preference study conflicts on any of its preferences.
	single := prefRecipe(2, "pref-b", "m.b", domain.RecipeSuccess)
	// (At Firefox 80: current Firefox sends no uptake for a matching recipe, so the
	// skip has no event to be noted on; the study is not enrolled either way.)
	multi80 := vers(80, run(1, okActions("multi-preference-experiment"), multiRecipe(1, "multi")))
	if o, _ := outcome(t, append(multi80, ver(80, run(2, okActions("multi-preference-experiment", prefAction), multiRecipe(1, "multi"), single)))...); o != "skipped normandy/recipe/2 pref-conflict" {
		t.Errorf("conflict on a multi-preference study's second preference: got %q", o)
	}
	if o, _ := outcome(t, append(multi, ver(100, run(2, okActions("multi-preference-experiment", prefAction), multiRecipe(1, "multi"), single)))...); o != "nothing" {
		t.Errorf("Firefox 100 conflict: got %q, want nothing (no enrollment, no uptake to note it on)", o)
	}
	// Removal in about:studies, and of an ended study.
	enrolled := vers(80, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))
	o, d = outcome(t, append(enrolled, ver(80, studyRemoved(2, P, "pref-a")))...)
	if o != "unenrolled preference_study/pref-a enrolled→unenrolled reason=individual-opt-out" || extraOf(d, domain.MethodUnenroll, "didResetValue") != "true" {
		t.Errorf("remove: got %q", o)
	}
	o, d = outcome(t, append(enrolled, ver(80, studyRemoved(2, P, "pref-a")), ver(80, studyRemoved(3, P, "pref-a")))...)
	if o != "unenroll_failed preference_study/pref-a unenrolled→unenrolled reason=already-unenrolled" ||
		extraOf(d, domain.MethodUnenrollFailed, "originalReason") != "individual-opt-out" || extraOf(d, domain.MethodUnenrollFailed, "enrollmentId") == "absent" {
		t.Errorf("remove again: got %q, extras %v", o, d.Events)
	}
	// The E2020 unenroll's full shape.
	_, d = outcome(t, append(enrolled, ver(80, prefChanged(2, "browser.a", false)))...)
	te, _ := d.Events[0].Telemetry(client, t0)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range te.Extra {
			if !yield(k) {
				return
			}
		}
	})
	if diff := cmp.Diff([]string{"branch", "changedPref", "didResetValue", "enrollmentId", "reason"}, keys); diff != "" {
		t.Errorf("Firefox 80 unenroll extras (-want +got):\n%s", diff)
	}
}

// TestBranchedAddonStudies covers update, updateFailed and branch removal.
func TestBranchedAddonStudies(t *testing.T) {
	t.Parallel()
	acts := okActions("branched-addon-study")
	b := []recipe.Branch{withAddon("a", 1, 1)}
	enroll := ver(80, run(1, acts, branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.0", b...)))
	tests := []struct {
		name  string
		then  domain.RecipeReport
		want  string
		extra [2]string // a telemetry extra key and its value
	}{
		{name: "new version is update", then: branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.1", b...),
			want: "updated addon_study/50 enrolled→enrolled", extra: [2]string{"addonVersion", "1.1"}},
		{name: "same version is nothing", then: branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.0", b...), want: "nothing"},
		{name: "failed update is updateFailed", then: edit(branchedRecipe(50, domain.RecipeExecutionError, "", "", b...),
			func(a *recipe.Study) { a.UpdateError = "no-downgrade" }),
			want: "update_failed addon_study/50 enrolled→enrolled reason=no-downgrade", extra: [2]string{"branch", "a"}},
		{name: "removed branch ends the study", then: branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.0", withAddon("b", 1, 2)),
			want: "unenrolled addon_study/50 enrolled→unenrolled reason=branch-removed", extra: [2]string{"enrollmentId", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, d := outcome(t, enroll, ver(80, run(2, acts, tt.then)))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if tt.extra[0] == "" {
				return
			}
			for _, e := range d.Events {
				if te, ok := e.Telemetry(client, t0); ok {
					v, has := te.Extra[tt.extra[0]]
					if !has || (tt.extra[1] != "" && v != tt.extra[1]) {
						t.Errorf("extra %s: got %q (present %t), want %q", tt.extra[0], v, has, tt.extra[1])
					}
				}
			}
		})
	}
	// The same recipes from Firefox 71 (before the rule): nothing of this happens.
	if got, _ := outcome(t, ver(71, run(1, acts, branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.0", b...))),
		ver(71, run(2, acts, branchedRecipe(50, domain.RecipeSuccess, "x@shield", "1.0", withAddon("b", 1, 2))))); got != "nothing" {
		t.Errorf("Firefox 71 removed branch: got %q, want nothing", got)
	}
}

// TestRolloutLifecycle walks a preference rollout through its machine.
func TestRolloutLifecycle(t *testing.T) {
	t.Parallel()
	const v = 80
	acts := rolloutActions()
	enroll := run(1, acts, rolloutRecipe(7, "ro", rp("r.a", "true")))
	changed := run(2, acts, rolloutRecipe(7, "ro", rp("r.a", "false")))
	tests := []struct {
		name  string
		cmds  []domain.Command
		want  string
		extra [3]string // method, key, value
	}{
		{name: "enroll", cmds: []domain.Command{enroll}, want: "enrolled preference_rollout/ro none→active", extra: [3]string{"enroll", "enrollmentId", ""}},
		{name: "same values: nothing", cmds: []domain.Command{enroll, run(2, acts, rolloutRecipe(7, "ro", rp("r.a", "true")))}, want: "nothing"},
		{name: "changed values: update", cmds: []domain.Command{enroll, changed}, want: "updated preference_rollout/ro active→active",
			extra: [3]string{"update", "previousState", "active"}},
		{name: "conflict with another active rollout", cmds: []domain.Command{enroll, run(2, acts, rolloutRecipe(8, "ro2", rp("r.a", "1")))},
			want: "enroll_failed preference_rollout/ro2 none→none reason=conflict", extra: [3]string{"enrollFailed", "preference", "r.a"}},
		{name: "client's enrollError", cmds: []domain.Command{run(1, acts, func() domain.RecipeReport {
			r := edit(rolloutRecipe(7, "ro", rp("r.a", "true")), func(a *recipe.Study) { a.EnrollError, a.EnrollErrorPreference = "invalid type", "r.a" })
			r.Status = domain.RecipeExecutionError
			return r
		}())}, want: "enroll_failed preference_rollout/ro none→none reason=invalid type", extra: [3]string{"enrollFailed", "reason", "invalid type"}},
		{name: "rollback", cmds: []domain.Command{enroll, run(2, acts, rollbackRecipe(9, "ro"))},
			want: "unenrolled preference_rollback/ro active→rolled_back reason=rollback", extra: [3]string{"unenroll", "reason", "rollback"}},
		{name: "rollback again: nothing", cmds: []domain.Command{enroll, run(2, acts, rollbackRecipe(9, "ro")), run(3, acts, rollbackRecipe(9, "ro"))}, want: "nothing"},
		{name: "update after rollback re-activates", cmds: []domain.Command{enroll, run(2, acts, rollbackRecipe(9, "ro")), run(3, acts, rolloutRecipe(7, "ro", rp("r.a", "false")))},
			want: "updated preference_rollout/ro rolled_back→active", extra: [3]string{"update", "previousState", "rolled-back"}},
		{name: "graduate", cmds: []domain.Command{enroll, graduated(2, "ro", "")}, want: "graduated preference_rollout/ro active→graduated reason=all-prefs-match"},
		{name: "rollback of a graduated rollout fails", cmds: []domain.Command{enroll, graduated(2, "ro", ""), run(3, acts, rollbackRecipe(9, "ro"))},
			want: "unenroll_failed preference_rollback/ro graduated→graduated reason=graduated"},
		{name: "rollback of a rollout in the graduation set fails so", cmds: []domain.Command{enroll, graduated(2, "ro", domain.ReasonGraduateInGraduationSet),
			run(3, acts, rollbackRecipe(9, "ro"))}, want: "unenroll_failed preference_rollback/ro graduated→graduated reason=in-graduation-set"},
		{name: "update un-graduates", cmds: []domain.Command{enroll, graduated(2, "ro", ""), run(3, acts, rolloutRecipe(7, "ro", rp("r.a", "false")))},
			want: "updated preference_rollout/ro graduated→active", extra: [3]string{"update", "previousState", "graduated"}},
		{name: "graduate twice is refused", cmds: []domain.Command{enroll, graduated(2, "ro", ""), graduated(3, "ro", "")}, want: "illegal"},
		{name: "the studies opt-out leaves rollouts alone", cmds: []domain.Command{enroll, optOut(2, false), run(3, acts, rolloutRecipe(7, "ro", rp("r.a", "false")))},
			want: "updated preference_rollout/ro active→active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, d := outcome(t, vers(v, tt.cmds...)...)
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if tt.extra[0] != "" {
				x := extraOf(d, domain.Method(tt.extra[0]), tt.extra[1])
				if x == "absent" || (tt.extra[2] != "" && x != tt.extra[2]) {
					t.Errorf("%s extra %s: got %q, want %q", tt.extra[0], tt.extra[1], x, tt.extra[2])
				}
			}
			for _, e := range d.Events {
				if err := fsm.CheckTransition(e); err != nil {
					t.Errorf("recorded event fails the audit: %v", err)
				}
			}
		})
	}
	// A failed rollout is not stored.
	s := apply(t, vers(v, enroll, run(2, acts, rolloutRecipe(8, "ro2", rp("r.a", "1"))))...)
	if _, ok := s.Find(domain.StudyRef{Object: domain.PreferenceRollout, Key: "ro2"}); ok {
		t.Errorf("a rollout that failed to enroll was stored")
	}
}

func TestRolloutMermaidGolden(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "rollout.mmd")
	got := fsm.RolloutMermaid()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./fsm -run Mermaid -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("RolloutMermaid() differs from %s (rerun with -update if the table changed on purpose)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestCurrentFirefoxReportsNoExecutionUptake: from Firefox 96 a matching recipe comes
// without a status and no action reports: the recipe is decided by the outcome the
// client added, every study action finalizes, and no uptake is recorded for it.
func TestCurrentFirefoxReportsNoExecutionUptake(t *testing.T) {
	t.Parallel()
	bare := func(h int, rs ...domain.RecipeReport) domain.Command {
		c := run(h, nil, rs...)
		for i := range c.Recipes {
			c.Recipes[i].Status = ""
		}
		c.FirefoxVersion = "96.0"
		return c
	}
	pref := prefRecipe(1, "pref-a", "browser.a", "")
	o, d := outcome(t, bare(1, pref))
	if o != "enrolled preference_study/pref-a none→enrolled" {
		t.Errorf("matching recipe without status: got %q, want an enrollment", o)
	}
	for _, e := range d.Events {
		if e.Source == "normandy/recipe/1" {
			t.Errorf("recorded uptake %s for a recipe Firefox 96 sent none for", e.Status)
		}
	}
	if o, _ := outcome(t, bare(1, pref), bare(2)); o != "nothing" {
		t.Errorf("no recipes at all: got %q, want the deadline set (nothing)", o)
	}
	if o, _ := outcome(t, bare(1, pref), bare(2, domain.RecipeReport{ID: 9, Action: "console-log"})); o != "unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen" {
		t.Errorf("unseen study without action statuses: got %q, want recipe-not-seen", o)
	}
	failed := edit(prefRecipe(1, "pref-a", "browser.a", ""), func(a *recipe.Study) { a.EnrollError = "invalid-type" })
	if o, _ := outcome(t, bare(1, failed)); o != "enroll_failed preference_study/pref-a none→enroll_failed reason=invalid-type" {
		t.Errorf("client's enrollError without status: got %q", o)
	}
	c := bare(1, pref)
	c.FirefoxVersion = "95.0"
	if o, _ := outcome(t, c); o != "invalid" {
		t.Errorf("Firefox 95 recipe without status: got %q, want invalid", o)
	}
	c.FirefoxVersion = ""
	if o, _ := outcome(t, c); o != "invalid" {
		t.Errorf("unversioned recipe without status: got %q, want invalid", o)
	}
}
