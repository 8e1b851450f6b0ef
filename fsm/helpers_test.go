package fsm_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
)

const client domain.ClientID = "client-1"

const (
	prefAction = "preference-experiment"
	addonAct   = "opt-out-study"
)

var t0 = time.Date(2018, 3, 10, 12, 0, 0, 0, time.UTC)

// at is t0 plus n hours, so tests read as a sequence of runs.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

var cmdSeq atomic.Int64

// nextID returns a fresh command id.
func nextID() string { return fmt.Sprintf("cmd-%d", cmdSeq.Add(1)) }

// run is a successful recipe run at hour h with the given actions and recipes.
func run(h int, actions []domain.ActionReport, recipes ...domain.RecipeReport) domain.Command {
	return domain.Command{Type: domain.CommandRecipeRun, CommandID: nextID(), ClientID: client, At: at(h),
		RunnerStatus: domain.RunnerSuccess, Actions: actions, Recipes: recipes}
}

// okActions reports each named action with ACTION_SUCCESS.
func okActions(names ...string) []domain.ActionReport {
	out := make([]domain.ActionReport, len(names))
	for i, n := range names {
		out[i] = domain.ActionReport{Name: n, Status: domain.ActionSuccess}
	}
	return out
}

// both reports the two 2018 study actions with ACTION_SUCCESS.
func both() []domain.ActionReport { return okActions(prefAction, addonAct) }

// prefRecipe is a preference-experiment recipe with two equal branches.
func prefRecipe(id domain.RecipeID, slug, pref string, status domain.UptakeStatus) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: prefAction, Status: status, Arguments: recipe.Must(recipe.Study{
		Slug: slug, PreferenceName: pref,
		Branches: []recipe.Branch{{Slug: "control", Ratio: 1}, {Slug: "experiment", Ratio: 1}},
	})}
}

// addonRecipe is a 2018 opt-out-study recipe (name, no branches) whose add-on installed.
func addonRecipe(id domain.RecipeID, name, addonID string) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: addonAct, Status: domain.RecipeSuccess, Arguments: recipe.Must(recipe.Study{
		Name: name, AddonID: addonID, AddonVersion: "1.0.0",
	})}
}

// addonFailed is an opt-out-study recipe whose add-on install failed.
func addonFailed(id domain.RecipeID, name, installError string) domain.RecipeReport {
	return domain.RecipeReport{ID: id, Action: addonAct, Status: domain.RecipeExecutionError, Arguments: recipe.Must(recipe.Study{
		Name: name, InstallError: installError,
	})}
}

func optOut(h int, enabled bool) domain.Command {
	return domain.Command{Type: domain.CommandOptOut, CommandID: nextID(), ClientID: client, At: at(h), StudiesEnabled: enabled}
}

func studyRemoved(h int, o domain.Object, key string) domain.Command {
	return domain.Command{Type: domain.CommandStudyRemoved, CommandID: nextID(), ClientID: client, At: at(h),
		Study: &domain.StudyRef{Object: o, Key: key}}
}

func addonUninstalled(h int, addonID string, sideload bool) domain.Command {
	return domain.Command{Type: domain.CommandAddonUninstalled, CommandID: nextID(), ClientID: client, At: at(h),
		AddonID: addonID, Sideload: sideload}
}

func prefChanged(h int, pref string, sideload bool) domain.Command {
	return domain.Command{Type: domain.CommandPrefChanged, CommandID: nextID(), ClientID: client, At: at(h),
		Preference: pref, Sideload: sideload}
}

func unenroll(h int, o domain.Object, key string, reason domain.Reason) domain.Command {
	return domain.Command{Type: domain.CommandUnenroll, CommandID: nextID(), ClientID: client, At: at(h),
		Study: &domain.StudyRef{Object: o, Key: key}, Reason: reason}
}

// apply decides cmds in order from an empty state, failing the test on any error.
func apply(t testing.TB, cmds ...domain.Command) domain.ClientState {
	t.Helper()
	var s domain.ClientState
	for i, c := range cmds {
		d, err := fsm.Decide(context.Background(), s, c)
		if err != nil {
			t.Fatalf("setup command %d (%s): %v", i, c.Type, err)
		}
		s = d.State
	}
	return s
}

// transitions returns the String form of the enrollment and opt-out events of evs,
// leaving out uptake, which most tests do not look at.
func transitions(evs []domain.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type != domain.EventUptakeReported {
			out = append(out, e.String())
		}
	}
	return out
}

// edit returns r with its arguments changed by fn (the fields studyd reads).
func edit(r domain.RecipeReport, fn func(a *recipe.Study)) domain.RecipeReport {
	a, err := r.Arguments.Study()
	if err != nil {
		panic(err)
	}
	fn(&a)
	r.Arguments = recipe.Must(a)
	return r
}

// args reads r's arguments (the fields studyd reads).
func args(r domain.RecipeReport) recipe.Study {
	a, err := r.Arguments.Study()
	if err != nil {
		panic(err)
	}
	return a
}

// skips lists the recipes a decision skipped: "<source> <note up to its first colon>".
func skips(events []domain.Event) []string {
	var out []string
	for _, e := range events {
		if e.Skipped != "" {
			note, _, _ := strings.Cut(e.Skipped, ":")
			out = append(out, e.Source+" "+note)
		}
	}
	return out
}

// paused is r with isEnrollmentPaused set.
func paused(r domain.RecipeReport) domain.RecipeReport {
	return edit(r, func(a *recipe.Study) { a.IsEnrollmentPaused = true })
}
