package fsm_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
)

// published reads the recipe of action as Normandy's server published it.
func published(t *testing.T, action string) simulate.PublishedRecipe {
	t.Helper()
	r, err := simulate.Published(action)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withInstall adds the install outcome a client reports to an add-on study's arguments.
func withInstall(t *testing.T, a recipe.Arguments, fields map[string]any) recipe.Arguments {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		m[k] = v
	}
	return recipe.Must(m)
}

// TestPublishedRecipesAreAccepted runs every action's published recipe, whole, as the
// client received it: the run is accepted, the recipe's uptake event keeps the whole
// arguments object (unknown fields included), and a study recipe enrolls with what
// Firefox kept of it.
func TestPublishedRecipesAreAccepted(t *testing.T) {
	t.Parallel()
	install := map[string]any{"addonId": "study@shield.mozilla.org", "addonVersion": "1.0.3"}
	tests := []struct {
		action  string
		install bool
		want    domain.Enrollment // the fields checked; zero Object for a recipe without a study
	}{
		{action: "preference-experiment", want: domain.Enrollment{Object: P, Key: "pref-flip-search-suggestions-1",
			Preference: "browser.search.suggest.enabled", PreferenceType: "boolean", PreferenceBranchType: "default",
			Ratios: []recipe.Ratio{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}}},
		{action: "multi-preference-experiment", want: domain.Enrollment{Object: P, Key: "pref-doh-rollout-check-3",
			Preference: "network.trr.mode", PreferenceType: "integer", PreferenceBranchType: "default",
			Ratios: []recipe.Ratio{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}}},
		{action: "opt-out-study", install: true, want: domain.Enrollment{Object: A, Key: "812", Slug: "pioneer-online-news-1",
			AddonID: "study@shield.mozilla.org", AddonVersion: "1.0.3"}},
		{action: "branched-addon-study", install: true, want: domain.Enrollment{Object: A, Key: "903", Slug: "screenshots-upload-2",
			AddonID: "study@shield.mozilla.org", AddonVersion: "1.0.3",
			Ratios: []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "upload-default", Ratio: 25}, {Slug: "upload-prompt", Ratio: 25}}}},
		{action: "show-heartbeat"},
		{action: "console-log"},
		{action: "preference-rollout"},
		{action: "preference-rollback"},
		{action: "show-survey"}, // an action studyd does not know
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			p := published(t, tt.action)
			args := p.Arguments
			if tt.install {
				args = withInstall(t, args, install)
			}
			r := domain.RecipeReport{ID: p.ID, Action: p.Action, Status: domain.RecipeSuccess, Arguments: args}
			d := decide(t, domain.ClientState{}, run(1, okActions(p.Action), r))
			var got *domain.Event
			for i, e := range d.Events {
				if e.Source == domain.RecipeSource(p.ID) {
					got = &d.Events[i]
				}
			}
			if got == nil {
				t.Fatalf("no uptake event for recipe %d in %v", p.ID, d.Events)
			}
			if got.Action != p.Action || got.Arguments != domain.JSONText(args) || got.Skipped != "" {
				t.Errorf("recipe event: action %q, arguments %s, skipped %q; want %q, %s, not skipped", got.Action, got.Arguments, got.Skipped, p.Action, args)
			}
			if tt.want.Object == "" {
				if len(d.State.Enrollments) != 0 {
					t.Errorf("got enrollments %v, want none", d.State.Enrollments)
				}
				return
			}
			en, ok := d.State.Find(tt.want.Study())
			if !ok || en.State != domain.StateEnrolled {
				t.Fatalf("study %s: got %+v, want enrolled", tt.want.Study(), en)
			}
			if tt.want.Slug == "" {
				tt.want.Slug = tt.want.Key
			}
			gotFields := domain.Enrollment{Object: en.Object, Key: en.Key, Slug: en.Slug, Preference: en.Preference,
				PreferenceType: en.PreferenceType, PreferenceBranchType: en.PreferenceBranchType, AddonID: en.AddonID,
				AddonVersion: en.AddonVersion, Ratios: en.Ratios}
			if diff := cmp.Diff(tt.want, gotFields); diff != "" {
				t.Errorf("enrollment (-want +got):\n%s", diff)
			}
			if en.Object == P && en.BranchValue == "" {
				t.Errorf("preference study enrolled in branch %q without its value", en.Branch)
			}
		})
	}
}

// TestBranchValueIsTheChosenBranchs checks that the value kept is the value of the
// branch the client was sampled into.
func TestBranchValueIsTheChosenBranchs(t *testing.T) {
	t.Parallel()
	p := published(t, "preference-experiment")
	d := decide(t, domain.ClientState{}, run(1, okActions(p.Action),
		domain.RecipeReport{ID: p.ID, Action: p.Action, Status: domain.RecipeSuccess, Arguments: p.Arguments}))
	en := d.State.Active()[0]
	want := map[string]domain.JSONText{"control": "true", "treatment": "false"}[en.Branch]
	if en.BranchValue != want {
		t.Errorf("branch %s: got value %s, want %s", en.Branch, en.BranchValue, want)
	}
	ev := lastTransition(t, d)
	if ev.BranchValue != want || ev.PreferenceType != "boolean" || ev.PreferenceBranchType != "default" {
		t.Errorf("enrolled event: value %s, type %q, branch type %q; want %s, boolean, default", ev.BranchValue, ev.PreferenceType, ev.PreferenceBranchType, want)
	}
}

// TestOperatorUnenrollResetFollowsReason: Firefox left the user's value (didResetValue
// "false") when the user's change of the preference ended the study, and reset it for
// every other reason.
func TestOperatorUnenrollResetFollowsReason(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		reason domain.Reason
		want   bool
	}{
		{"", true},
		{domain.ReasonUnknown, true},
		{domain.ReasonRecipeNotSeen, true},
		{domain.ReasonUserPreferenceChanged, false},
		{domain.ReasonUserPreferenceChangedSideload, false},
	} {
		t.Run(string(tt.reason), func(t *testing.T) {
			t.Parallel()
			s := apply(t, run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))
			ev := lastTransition(t, decide(t, s, unenroll(2, P, "pref-a", tt.reason)))
			if ev.ResetValue != tt.want {
				t.Errorf("unenroll reason %q: got didResetValue %t, want %t", tt.reason, ev.ResetValue, tt.want)
			}
		})
	}
}
