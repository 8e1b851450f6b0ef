package fsm_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

// The seed's enrollment section, spelled out here by hand from data-collection.rst
// rather than taken from domain's constants, so that a misspelt constant fails.
var seedExtras = map[[2]string][]string{
	{"enroll", "preference_study"}:   {"branch", "experimentType"},
	{"unenroll", "preference_study"}: {"didResetValue", "reason"},
	{"enroll", "addon_study"}:        {"addonId", "addonVersion"},
	{"enrollFailed", "addon_study"}:  {"reason"},
	{"unenroll", "addon_study"}:      {"addonId", "addonVersion", "reason"},
}

var seedReasons = map[string][]string{
	"preference_study": {"recipe-not-seen", "user-preference-changed", "user-preference-changed-sideload", "unknown"},
	"addon_study": {"install-failure", "individual-opt-out", "general-opt-out", "recipe-not-seen", "uninstalled",
		"uninstalled-sideload", "unknown"},
}

// TestNormandyExactness proves that every seed event (method × object), every extra
// key and every unenroll reason of each object is produced by some command sequence,
// and that each produced event has exactly the seed's Telemetry shape.
func TestNormandyExactness(t *testing.T) {
	t.Parallel()
	for obj, reasons := range seedReasons {
		var got []string
		for _, r := range domain.Reasons(domain.Object(obj)) {
			got = append(got, string(r))
		}
		if diff := cmp.Diff(reasons, got); diff != "" {
			t.Errorf("domain reasons for %s differ from the seed (-seed +domain):\n%s", obj, diff)
		}
	}

	pref := func(h int, st domain.UptakeStatus) domain.Command {
		return run(h, both(), prefRecipe(1, "pref-a", "browser.a", st))
	}
	highpop := func() domain.RecipeReport {
		return edit(prefRecipe(2, "pref-hp", "browser.hp", domain.RecipeSuccess), func(a *recipe.Study) { a.IsHighPopulation = true })
	}
	addon := func(h int) domain.Command { return run(h, both(), addonRecipe(101, "addon-a", "a@shield")) }
	scenarios := []struct {
		name   string
		cmds   []domain.Command
		method string
		object string
		reason string // unenroll reason, or "" for other events
		extra  map[string]string
	}{
		{name: "enroll preference_study exp", cmds: []domain.Command{pref(1, domain.RecipeSuccess)},
			method: "enroll", object: "preference_study", extra: map[string]string{"experimentType": "exp"}},
		{name: "enroll preference_study exp-highpop", cmds: []domain.Command{run(1, both(), highpop())},
			method: "enroll", object: "preference_study", extra: map[string]string{"experimentType": "exp-highpop"}},
		{name: "unenroll preference_study recipe-not-seen", cmds: []domain.Command{pref(1, domain.RecipeSuccess), run(2, both())},
			method: "unenroll", object: "preference_study", reason: "recipe-not-seen", extra: map[string]string{"didResetValue": "true"}},
		{name: "unenroll preference_study user-preference-changed",
			cmds:   []domain.Command{pref(1, domain.RecipeSuccess), prefChanged(2, "browser.a", false)},
			method: "unenroll", object: "preference_study", reason: "user-preference-changed", extra: map[string]string{"didResetValue": "false"}},
		{name: "unenroll preference_study user-preference-changed-sideload",
			cmds:   []domain.Command{pref(1, domain.RecipeSuccess), prefChanged(2, "browser.a", true)},
			method: "unenroll", object: "preference_study", reason: "user-preference-changed-sideload", extra: map[string]string{"didResetValue": "false"}},
		{name: "unenroll preference_study unknown", cmds: []domain.Command{pref(1, domain.RecipeSuccess), unenroll(2, P, "pref-a", "")},
			method: "unenroll", object: "preference_study", reason: "unknown", extra: map[string]string{"didResetValue": "true"}},
		{name: "enroll addon_study", cmds: []domain.Command{addon(1)},
			method: "enroll", object: "addon_study", extra: map[string]string{"addonId": "a@shield", "addonVersion": "1.0.0"}},
		{name: "enrollFailed addon_study", cmds: []domain.Command{run(1, both(), addonFailed(101, "addon-a", "AddonStudies.jsm:207:13 Error"))},
			method: "enrollFailed", object: "addon_study", extra: map[string]string{"reason": "AddonStudies.jsm:207:13 Error"}},
		{name: "unenroll addon_study install-failure", cmds: []domain.Command{addon(1), unenroll(2, A, "101", domain.ReasonInstallFailure)},
			method: "unenroll", object: "addon_study", reason: "install-failure"},
		{name: "unenroll addon_study individual-opt-out", cmds: []domain.Command{addon(1), studyRemoved(2, A, "101")},
			method: "unenroll", object: "addon_study", reason: "individual-opt-out"},
		{name: "unenroll addon_study general-opt-out", cmds: []domain.Command{addon(1), optOut(2, false)},
			method: "unenroll", object: "addon_study", reason: "general-opt-out"},
		{name: "unenroll addon_study recipe-not-seen", cmds: []domain.Command{addon(1), run(2, both())},
			method: "unenroll", object: "addon_study", reason: "recipe-not-seen"},
		{name: "unenroll addon_study uninstalled", cmds: []domain.Command{addon(1), addonUninstalled(2, "a@shield", false)},
			method: "unenroll", object: "addon_study", reason: "uninstalled"},
		{name: "unenroll addon_study uninstalled-sideload", cmds: []domain.Command{addon(1), addonUninstalled(2, "a@shield", true)},
			method: "unenroll", object: "addon_study", reason: "uninstalled-sideload"},
		{name: "unenroll addon_study unknown", cmds: []domain.Command{addon(1), unenroll(2, A, "101", "")},
			method: "unenroll", object: "addon_study", reason: "unknown"},
	}

	covered := map[[2]string]bool{}
	coveredReasons := map[[2]string]bool{}
	coveredExtras := map[string]bool{}
	for _, sc := range scenarios {
		covered[[2]string{sc.method, sc.object}] = true
		if sc.reason != "" {
			coveredReasons[[2]string{sc.object, sc.reason}] = true
		}
		t.Run(sc.name, func(t *testing.T) {
			s := apply(t, sc.cmds[:len(sc.cmds)-1]...)
			last := sc.cmds[len(sc.cmds)-1]
			d := decide(t, s, last)
			var found []domain.TelemetryEvent
			for _, e := range d.Events {
				te, ok := e.Telemetry(d.State.Client, last.At)
				if ok && string(te.Method) == sc.method && string(te.Object) == sc.object {
					found = append(found, te)
				}
			}
			if len(found) != 1 {
				t.Fatalf("got %d %s %s telemetry events in %v, want 1", len(found), sc.method, sc.object, d.Events)
			}
			te := found[0]
			if te.Category != "normandy" {
				t.Errorf("got category %q, want normandy", te.Category)
			}
			wantValue := "pref-a"
			switch {
			case sc.object == "addon_study":
				wantValue = "addon-a"
			case sc.name == "enroll preference_study exp-highpop":
				wantValue = "pref-hp"
			}
			if te.Value != wantValue {
				t.Errorf("got value %q, want the study name %q", te.Value, wantValue)
			}
			if te.ClientID != client || te.Timestamp != last.At.UnixMilli() {
				t.Errorf("got client %q at %d, want %q at %d", te.ClientID, te.Timestamp, client, last.At.UnixMilli())
			}
			var keys []string
			for k := range te.Extra {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			want := slices.Sorted(slices.Values(seedExtras[[2]string{sc.method, sc.object}]))
			if diff := cmp.Diff(want, keys); diff != "" {
				t.Errorf("extra keys differ from the seed (-seed +got):\n%s", diff)
			}
			if sc.reason != "" && te.Extra["reason"] != sc.reason {
				t.Errorf("got reason %q, want %q", te.Extra["reason"], sc.reason)
			}
			for k, v := range sc.extra {
				if te.Extra[k] != v {
					t.Errorf("got extra %s=%q, want %q", k, te.Extra[k], v)
				}
			}
			if sc.method == "enroll" && sc.object == "preference_study" && te.Extra["branch"] != "control" && te.Extra["branch"] != "experiment" {
				t.Errorf("got branch %q, want one of the recipe's branches", te.Extra["branch"])
			}
			for k, v := range te.Extra {
				if v == "" {
					t.Errorf("extra %s is empty; Firefox sends non-empty strings", k)
				}
			}
		})
		for k := range sc.extra {
			coveredExtras[k] = true
		}
		for _, k := range seedExtras[[2]string{sc.method, sc.object}] {
			coveredExtras[k] = true
		}
	}
	for k := range seedExtras {
		if !covered[k] {
			t.Errorf("seed event %s %s is not reached by any scenario", k[0], k[1])
		}
	}
	for obj, reasons := range seedReasons {
		for _, r := range reasons {
			if !coveredReasons[[2]string{obj, r}] {
				t.Errorf("seed reason %s for %s is not reached by any scenario", r, obj)
			}
		}
	}
	for _, k := range []string{"branch", "experimentType", "didResetValue", "reason", "addonId", "addonVersion"} {
		if !coveredExtras[k] {
			t.Errorf("seed extra %s is not produced by any scenario", k)
		}
	}
}

// TestEveryUptakeStatusIsRecorded proves each of the seed's 13 uptake statuses is
// accepted in a run and recorded under the right source key.
func TestEveryUptakeStatusIsRecorded(t *testing.T) {
	t.Parallel()
	seed := map[string][]string{
		"normandy/runner": {"RUNNER_INVALID_SIGNATURE", "RUNNER_NETWORK_ERROR", "RUNNER_SERVER_ERROR", "RUNNER_SUCCESS"},
		"normandy/action/console-log": {"ACTION_NETWORK_ERROR", "ACTION_PRE_EXECUTION_ERROR", "ACTION_POST_EXECUTION_ERROR",
			"ACTION_SERVER_ERROR", "ACTION_SUCCESS"},
		"normandy/recipe/42": {"RECIPE_ACTION_DISABLED", "RECIPE_EXECUTION_ERROR", "RECIPE_INVALID_ACTION", "RECIPE_SUCCESS"},
	}
	got := map[string][]string{}
	record := func(c domain.Command) {
		t.Helper()
		for _, e := range decide(t, domain.ClientState{}, c).Events {
			if e.Type == domain.EventUptakeReported && !slices.Contains(got[e.Source], string(e.Status)) {
				got[e.Source] = append(got[e.Source], string(e.Status))
			}
		}
	}
	for _, st := range domain.RunnerStatuses {
		c := run(1, nil)
		c.RunnerStatus = st
		record(c)
	}
	for _, st := range domain.ActionStatuses {
		record(run(1, []domain.ActionReport{{Name: "console-log", Status: st}}))
	}
	for _, st := range domain.RecipeStatuses {
		record(run(1, nil, domain.RecipeReport{ID: 42, Action: "console-log", Status: st}))
	}
	for src := range got {
		slices.Sort(got[src])
	}
	for src := range seed {
		slices.Sort(seed[src])
	}
	if diff := cmp.Diff(seed, got); diff != "" {
		t.Errorf("recorded uptake differs from the seed (-seed +got):\n%s", diff)
	}
}
