package fsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
)

const (
	P = domain.PreferenceStudy
	A = domain.AddonStudy
)

func TestDecide(t *testing.T) {
	t.Parallel()
	enrolledPref := func() []domain.Command {
		return []domain.Command{run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))}
	}
	enrolledAddon := func() []domain.Command {
		return []domain.Command{run(1, both(), addonRecipe(101, "addon-a", "a@shield"))}
	}
	tests := []struct {
		name  string
		setup []domain.Command
		cmd   domain.Command
		want  []string
		// wantSkip: "<source> <note up to its first colon>" of each recipe skipped.
		wantSkip []string
		wantErr  error
	}{
		// recipe_run: enrollment
		{name: "run enrolls preference study",
			cmd:  run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)),
			want: []string{"enrolled preference_study/pref-a none→enrolled"}},
		{name: "run enrolls add-on study keyed by recipe id",
			cmd:  run(1, both(), addonRecipe(101, "addon-a", "a@shield")),
			want: []string{"enrolled addon_study/101 none→enrolled"}},
		{name: "add-on install error is enrollFailed",
			cmd:  run(1, both(), addonFailed(101, "addon-a", "AddonStudies.jsm:42:7 Error")),
			want: []string{"enroll_failed addon_study/101 none→enroll_failed reason=AddonStudies.jsm:42:7 Error"}},
		{name: "failed add-on study may fail again",
			setup: []domain.Command{run(1, both(), addonFailed(101, "addon-a", "x.jsm:1:1 Error"))},
			cmd:   run(2, both(), addonFailed(101, "addon-a", "x.jsm:2:2 Error")),
			want:  []string{"enroll_failed addon_study/101 enroll_failed→enroll_failed reason=x.jsm:2:2 Error"}},
		{name: "failed add-on study may enroll on a later run",
			setup: []domain.Command{run(1, both(), addonFailed(101, "addon-a", "x.jsm:1:1 Error"))},
			cmd:   run(2, both(), addonRecipe(101, "addon-a", "a@shield")),
			want:  []string{"enrolled addon_study/101 enroll_failed→enrolled"}},
		{name: "add-on execution error without installError does nothing",
			cmd: run(1, both(), func() domain.RecipeReport {
				r := addonFailed(101, "addon-a", "")
				return r
			}())},
		{name: "preference study execution error does nothing",
			cmd: run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeExecutionError))},
		{name: "recipe not executed does nothing",
			cmd: run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeActionDisabled))},
		{name: "non-study recipe does nothing",
			cmd: run(1, okActions("show-heartbeat"), domain.RecipeReport{ID: 5, Action: "show-heartbeat", Status: domain.RecipeSuccess})},
		{name: "enrolled study seen again: no event",
			setup: enrolledPref(),
			cmd:   run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))},
		{name: "enrolled study seen with execution error stays enrolled",
			setup: enrolledPref(),
			cmd:   run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeExecutionError))},
		{name: "ended study never re-enrolls",
			setup: append(enrolledPref(), run(2, both())),
			cmd:   run(3, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))},
		// isEnrollmentPaused: no new enrollment; enrolled clients stay and are seen, so
		// finalize does not end them.
		{name: "paused preference study enrolls no one",
			cmd:      run(1, both(), paused(prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess))),
			wantSkip: []string{"normandy/recipe/1 isEnrollmentPaused"}},
		{name: "paused preference study keeps and sees its enrolled clients",
			setup: enrolledPref(),
			cmd:   run(2, both(), paused(prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))},
		{name: "paused add-on study enrolls no one",
			cmd:      run(1, both(), paused(domain.RecipeReport{ID: 101, Action: addonAct, Status: domain.RecipeSuccess, Arguments: recipe.Must(recipe.Study{Name: "addon-a"})})),
			wantSkip: []string{"normandy/recipe/101 isEnrollmentPaused"}},
		{name: "paused add-on study keeps and sees its enrolled clients",
			setup: enrolledAddon(),
			cmd:   run(2, both(), paused(addonRecipe(101, "addon-a", "a@shield")))},
		{name: "unpaused again, the study enrolls",
			setup: []domain.Command{run(1, both(), paused(prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)))},
			cmd:   run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)),
			want:  []string{"enrolled preference_study/pref-a none→enrolled"}},

		// A conflicting recipe skips itself, as the 2018 action did (warning, return,
		// RECIPE_SUCCESS); the rest of the run applies, finalize included.
		{name: "preference conflict skips only that recipe",
			setup: enrolledPref(),
			cmd: run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), prefRecipe(2, "pref-b", "browser.a", domain.RecipeSuccess),
				prefRecipe(3, "pref-c", "browser.c", domain.RecipeSuccess)),
			want:     []string{"enrolled preference_study/pref-c none→enrolled"},
			wantSkip: []string{"normandy/recipe/2 pref-conflict"}},
		{name: "preference conflict within one run skips the later recipe",
			cmd:      run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), prefRecipe(2, "pref-b", "browser.a", domain.RecipeSuccess)),
			want:     []string{"enrolled preference_study/pref-a none→enrolled"},
			wantSkip: []string{"normandy/recipe/2 pref-conflict"}},
		{name: "preference conflict does not stop finalize",
			setup: append(enrolledPref(), run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess),
				addonRecipe(101, "addon-a", "a@shield"))),
			cmd:      run(3, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), prefRecipe(2, "pref-b", "browser.a", domain.RecipeSuccess)),
			want:     []string{"unenrolled addon_study/101 enrolled→unenrolled reason=recipe-not-seen"},
			wantSkip: []string{"normandy/recipe/2 pref-conflict"}},
		{name: "unusable preference recipe skips only itself",
			cmd: run(1, both(), edit(prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), func(a *recipe.Study) { a.Branches = nil }),
				prefRecipe(2, "pref-b", "browser.b", domain.RecipeSuccess)),
			want:     []string{"enrolled preference_study/pref-b none→enrolled"},
			wantSkip: []string{"normandy/recipe/1 unusable arguments"}},
		{name: "recipe with a wrongly typed field skips only itself",
			cmd: run(1, both(), domain.RecipeReport{ID: 1, Action: prefAction, Status: domain.RecipeSuccess,
				Arguments: recipe.Must(map[string]any{"slug": 7, "preferenceName": "browser.a"})},
				prefRecipe(2, "pref-b", "browser.b", domain.RecipeSuccess)),
			want:     []string{"enrolled preference_study/pref-b none→enrolled"},
			wantSkip: []string{"normandy/recipe/1 unusable arguments"}},
		{name: "preference free again after its study ended",
			setup: append(enrolledPref(), prefChanged(2, "browser.a", false)),
			cmd:   run(3, both(), prefRecipe(2, "pref-b", "browser.a", domain.RecipeSuccess)),
			want:  []string{"enrolled preference_study/pref-b none→enrolled"}},
		{name: "add-on success without installed add-on skips only itself",
			cmd: run(1, both(), domain.RecipeReport{ID: 101, Action: addonAct, Status: domain.RecipeSuccess,
				Arguments: recipe.Must(recipe.Study{Name: "addon-a"})}, addonRecipe(102, "addon-b", "b@shield")),
			want:     []string{"enrolled addon_study/102 none→enrolled"},
			wantSkip: []string{"normandy/recipe/101 RECIPE_SUCCESS without the installed add-on"}},

		// recipe_run: finalize
		{name: "unseen preference study ends recipe-not-seen",
			setup: enrolledPref(),
			cmd:   run(2, both()),
			want:  []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen"}},
		{name: "unseen add-on study ends recipe-not-seen",
			setup: enrolledAddon(),
			cmd:   run(2, both()),
			want:  []string{"unenrolled addon_study/101 enrolled→unenrolled reason=recipe-not-seen"}},
		{name: "recipe not executed is not seen",
			setup: enrolledPref(),
			cmd:   run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeActionDisabled)),
			want:  []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen"}},
		{name: "action not reported does not finalize",
			setup: enrolledPref(),
			cmd:   run(2, okActions(addonAct))},
		{name: "action with post-execution error does not finalize",
			setup: enrolledPref(),
			cmd:   run(2, []domain.ActionReport{{Name: prefAction, Status: domain.ActionPostExecutionError}})},
		{name: "action with pre-execution error does not finalize",
			setup: enrolledPref(),
			cmd:   run(2, []domain.ActionReport{{Name: prefAction, Status: domain.ActionPreExecutionError}})},
		{name: "finalize ends only the action's own studies",
			setup: []domain.Command{run(1, okActions("multi-preference-experiment", prefAction),
				prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess),
				func() domain.RecipeReport {
					r := prefRecipe(2, "pref-m", "browser.m", domain.RecipeSuccess)
					r.Action = "multi-preference-experiment"
					return r
				}())},
			cmd:  run(2, okActions(prefAction)),
			want: []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen"}},
		{name: "failed fetch finalizes nothing",
			setup: enrolledPref(),
			cmd: domain.Command{Type: domain.CommandRecipeRun, CommandID: "net", ClientID: client, At: at(2),
				RunnerStatus: domain.RunnerNetworkError}},
		{name: "stale run is refused",
			setup:   []domain.Command{run(5, both())},
			cmd:     run(4, both()),
			wantErr: domain.ErrStaleRun},
		{name: "run at the same instant is accepted",
			setup: []domain.Command{run(5, both())},
			cmd:   run(5, both())},
		{name: "opted-out client skips study recipes",
			setup: []domain.Command{optOut(1, false)},
			cmd:   run(2, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), addonRecipe(101, "addon-a", "a@shield"))},
		{name: "opted-out client's preference study ends at next run",
			setup: append(enrolledPref(), optOut(2, false)),
			cmd:   run(3, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess)),
			want:  []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=recipe-not-seen"}},

		// opt_out
		{name: "opt-out ends add-on studies only",
			setup: []domain.Command{run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), addonRecipe(101, "addon-a", "a@shield"))},
			cmd:   optOut(2, false),
			want: []string{"studies_opt_out_changed studies_enabled=false",
				"unenrolled addon_study/101 enrolled→unenrolled reason=general-opt-out"}},
		{name: "opt-out twice: no events", setup: []domain.Command{optOut(1, false)}, cmd: optOut(2, false)},
		{name: "opt-in when enabled: no events", cmd: optOut(1, true)},
		{name: "opt back in restores nothing",
			setup: append(enrolledAddon(), optOut(2, false)),
			cmd:   optOut(3, true),
			want:  []string{"studies_opt_out_changed studies_enabled=true"}},

		// study_removed
		{name: "remove enrolled add-on study",
			setup: enrolledAddon(), cmd: studyRemoved(2, A, "101"),
			want: []string{"unenrolled addon_study/101 enrolled→unenrolled reason=individual-opt-out"}},
		{name: "remove ended add-on study: no events",
			setup: append(enrolledAddon(), studyRemoved(2, A, "101")), cmd: studyRemoved(3, A, "101")},
		{name: "remove unknown add-on study", cmd: studyRemoved(1, A, "999"), wantErr: domain.ErrIllegalTransition},
		{name: "remove failed add-on study",
			setup:   []domain.Command{run(1, both(), addonFailed(101, "addon-a", "x.jsm:1:1 Error"))},
			cmd:     studyRemoved(2, A, "101"),
			wantErr: domain.ErrIllegalTransition},
		{name: "remove preference study is refused",
			setup: enrolledPref(), cmd: studyRemoved(2, P, "pref-a"), wantErr: domain.ErrIllegalTransition},

		// addon_uninstalled
		{name: "add-on uninstalled",
			setup: enrolledAddon(), cmd: addonUninstalled(2, "a@shield", false),
			want: []string{"unenrolled addon_study/101 enrolled→unenrolled reason=uninstalled"}},
		{name: "add-on missing at startup",
			setup: enrolledAddon(), cmd: addonUninstalled(2, "a@shield", true),
			want: []string{"unenrolled addon_study/101 enrolled→unenrolled reason=uninstalled-sideload"}},
		{name: "other add-on uninstalled: no events", setup: enrolledAddon(), cmd: addonUninstalled(2, "b@x", false)},
		{name: "add-on of ended study uninstalled: no events",
			setup: append(enrolledAddon(), addonUninstalled(2, "a@shield", false)), cmd: addonUninstalled(3, "a@shield", false)},

		// pref_changed
		{name: "study preference changed",
			setup: enrolledPref(), cmd: prefChanged(2, "browser.a", false),
			want: []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=user-preference-changed"}},
		{name: "study preference changed while inactive",
			setup: enrolledPref(), cmd: prefChanged(2, "browser.a", true),
			want: []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=user-preference-changed-sideload"}},
		{name: "other preference changed: no events", setup: enrolledPref(), cmd: prefChanged(2, "browser.other", false)},

		// unenroll
		{name: "operator unenroll defaults to unknown",
			setup: enrolledPref(), cmd: unenroll(2, P, "pref-a", ""),
			want: []string{"unenrolled preference_study/pref-a enrolled→unenrolled reason=unknown"}},
		{name: "operator unenroll with reason",
			setup: enrolledAddon(), cmd: unenroll(2, A, "101", domain.ReasonInstallFailure),
			want: []string{"unenrolled addon_study/101 enrolled→unenrolled reason=install-failure"}},
		{name: "operator unenroll of unknown study", cmd: unenroll(1, P, "nope", ""), wantErr: domain.ErrIllegalTransition},
		{name: "operator unenroll of ended study",
			setup: append(enrolledPref(), unenroll(2, P, "pref-a", "")), cmd: unenroll(3, P, "pref-a", ""),
			wantErr: domain.ErrIllegalTransition},
		{name: "operator unenroll of failed study",
			setup:   []domain.Command{run(1, both(), addonFailed(101, "addon-a", "x.jsm:1:1 Error"))},
			cmd:     unenroll(2, A, "101", ""),
			wantErr: domain.ErrIllegalTransition},
		{name: "reason not allowed for object is invalid",
			setup: enrolledPref(), cmd: unenroll(2, P, "pref-a", domain.ReasonUninstalled), wantErr: domain.ErrInvalid},

		// common
		{name: "invalid command", cmd: domain.Command{Type: domain.CommandOptOut, ClientID: client, At: at(1)},
			wantErr: domain.ErrInvalid},
		{name: "command for another client",
			setup:   enrolledPref(),
			cmd:     domain.Command{Type: domain.CommandOptOut, CommandID: "x", ClientID: "client-2", At: at(2)},
			wantErr: domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := apply(t, tt.setup...)
			d, err := fsm.Decide(context.Background(), s, tt.cmd)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want one wrapping %v", err, tt.wantErr)
				}
				if d.Events != nil {
					t.Errorf("got events %v with an error, want none", d.Events)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, transitions(d.Events)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkip, skips(d.Events)); diff != "" {
				t.Errorf("skipped recipes (-want +got):\n%s", diff)
			}
			if d.State.Client != client {
				t.Errorf("got client %q, want %q", d.State.Client, client)
			}
			if err := d.State.Validate(); err != nil {
				t.Errorf("resulting state invalid: %v", err)
			}
		})
	}
}
