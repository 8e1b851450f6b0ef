package fsm_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
)

// fuzzSeeds are valid commands of every type, the starting corpus of the decoders.
func fuzzSeeds() []domain.Command {
	var published []domain.RecipeReport
	for _, action := range simulate.PublishedActions() {
		p, err := simulate.Published(action)
		if err != nil {
			panic(err)
		}
		published = append(published, domain.RecipeReport{ID: p.ID, Action: p.Action, Status: domain.RecipeSuccess, Arguments: p.Arguments})
	}
	return []domain.Command{
		run(9, okActions(simulate.PublishedActions()...), published...),
		run(10, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), addonRecipe(101, "addon-a", "a@shield"),
			addonFailed(102, "addon-b", "x.jsm:1:1 Error"), prefRecipe(3, "pref-c", "browser.c", domain.RecipeExecutionError)),
		run(10, both()),
		{Type: domain.CommandRecipeRun, CommandID: "n", ClientID: client, At: at(10), RunnerStatus: domain.RunnerNetworkError},
		optOut(10, false), optOut(10, true),
		studyRemoved(10, A, "101"), studyRemoved(10, P, "pref-a"),
		addonUninstalled(10, "a@shield", true), prefChanged(10, "browser.a", false),
		unenroll(10, P, "pref-a", domain.ReasonUnknown), unenroll(10, A, "103", ""),
	}
}

// fuzzState is a client with studies in every state, for decoded commands to act on.
func fuzzState(t testing.TB) domain.ClientState {
	return apply(t,
		run(1, both(), prefRecipe(1, "pref-a", "browser.a", domain.RecipeSuccess), prefRecipe(2, "pref-b", "browser.b", domain.RecipeSuccess),
			addonRecipe(101, "addon-a", "a@shield"), addonRecipe(103, "addon-c", "c@shield"), addonFailed(102, "addon-b", "x.jsm:1:1 Error")),
		prefChanged(2, "browser.b", false))
}

// checkDecide decides a command that passed validation against s and the empty state:
// it must not panic, may fail only with the decider's sentinels, and every event it
// decides must be well formed and legal.
func checkDecide(t *testing.T, s domain.ClientState, c domain.Command) {
	for _, st := range []domain.ClientState{s, {}} {
		d, err := fsm.Decide(context.Background(), st, c)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrIllegalTransition) && !errors.Is(err, domain.ErrStaleRun) {
				t.Fatalf("decide: got %v, want an error wrapping a domain sentinel", err)
			}
			continue
		}
		for _, e := range d.Events {
			if err := e.Validate(); err != nil {
				t.Fatalf("decided an invalid event %v: %v", e, err)
			}
			if err := fsm.CheckTransition(e); err != nil {
				t.Fatalf("decided an illegal event: %v", err)
			}
		}
		if err := d.State.Validate(); err != nil {
			t.Fatalf("decided an invalid state: %v", err)
		}
	}
}

func FuzzCommandJSON(f *testing.F) {
	for _, c := range fuzzSeeds() {
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"recipe_run","recipes":[{"id":-1}]}`))
	// Later Firefox: a version, later statuses, a rollout and a graduation.
	f.Add([]byte(`{"type":"recipe_run","command_id":"v1","client_id":"client-1","at":"2020-06-01T00:00:00Z","firefox_version":"80.0.1",` +
		`"runner_status":"RUNNER_SUCCESS","actions":[{"name":"preference-experiment","status":"ACTION_SUCCESS"}],"recipes":[` +
		`{"id":1,"action":"preference-experiment","status":"RECIPE_DIDNT_MATCH_FILTER","arguments":{"slug":"pref-a"}},` +
		`{"id":2,"action":"preference-rollout","status":"RECIPE_SUCCESS","arguments":{"slug":"ro","preferences":[{"preferenceName":"p","value":1}]}}]}`))
	f.Add([]byte(`{"type":"rollout_graduated","command_id":"v2","client_id":"client-1","at":"2020-06-02T00:00:00Z","firefox_version":"96.0",` +
		`"study":{"object":"preference_rollout","key":"ro"},"reason":"in-graduation-set"}`))
	f.Add([]byte(`{"type":"pref_changed","command_id":"v3","client_id":"client-1","at":"2022-06-02T00:00:00Z","firefox_version":"115.0esr","preference":"browser.a"}`))
	s := fuzzState(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c domain.Command
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnknownCommandType) {
				t.Fatalf("validate: got %v, want an error wrapping ErrInvalid or ErrUnknownCommandType", err)
			}
			return
		}
		checkDecide(t, s, c)
	})
}

func FuzzCommandMsgpack(f *testing.F) {
	for _, c := range fuzzSeeds() {
		b, err := msgpack.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := fuzzState(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c domain.Command
		if err := msgpack.Unmarshal(b, &c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnknownCommandType) {
				t.Fatalf("validate: got %v, want an error wrapping ErrInvalid or ErrUnknownCommandType", err)
			}
			return
		}
		checkDecide(t, s, c)
	})
}

// FuzzValidate builds commands field by field, so that the fuzzer reaches the type
// rules quickly instead of fighting the decoders. A command that validates must still
// validate after a JSON and a msgpack round trip, and must decide without panicking.
func FuzzValidate(f *testing.F) {
	f.Add("recipe_run", "id", "client-1", int64(1520683200), "RUNNER_SUCCESS", "preference-experiment", "ACTION_SUCCESS",
		uint64(1), "preference-experiment", "RECIPE_SUCCESS", "pref-a", "browser.a", "", "", uint64(1), "preference_study", "pref-a", "", false, false)
	f.Add("recipe_run", "id", "client-1", int64(1520683200), "RUNNER_SUCCESS", "opt-out-study", "ACTION_SUCCESS",
		uint64(101), "opt-out-study", "RECIPE_EXECUTION_ERROR", "addon-a", "", "", "a.jsm:1:1 Error", uint64(0), "addon_study", "101", "", false, false)
	f.Add("unenroll", "id", "client-1", int64(1520683200), "", "", "", uint64(0), "", "", "", "", "", "", uint64(0),
		"addon_study", "101", "install-failure", false, false)
	f.Add("pref_changed", "id", "client-1", int64(1520683200), "", "", "", uint64(0), "", "", "", "browser.a", "", "", uint64(0),
		"", "", "", true, false)
	s := fuzzState(f)
	f.Fuzz(func(t *testing.T, typ, id, clientID string, sec int64, runner, actName, actStatus string,
		recipeID uint64, recipeAction, recipeStatus, slug, pref, addonID, installError string, ratio uint64,
		object, key, reason string, flag, extra bool) {
		c := domain.Command{Type: domain.CommandType(typ), CommandID: id, ClientID: domain.ClientID(clientID),
			At: time.Unix(sec%(1<<35), 0).UTC()}
		switch c.Type {
		case domain.CommandRecipeRun:
			c.RunnerStatus = domain.UptakeStatus(runner)
			if actName != "" {
				c.Actions = []domain.ActionReport{{Name: actName, Status: domain.UptakeStatus(actStatus)}}
			}
			if recipeAction != "" {
				args := recipe.Study{Slug: slug, PreferenceName: pref, AddonID: addonID, InstallError: installError,
					IsHighPopulation: flag}
				if addonID != "" {
					args.AddonVersion = "1.0"
				}
				if ratio > 0 || pref != "" {
					args.Branches = []recipe.Branch{{Slug: "control", Ratio: ratio % 1000}, {Slug: "treatment", Ratio: 1}}
				}
				c.Recipes = []domain.RecipeReport{{ID: domain.RecipeID(recipeID), Action: recipeAction,
					Status: domain.UptakeStatus(recipeStatus), Arguments: recipe.Must(args)}}
			}
		case domain.CommandOptOut:
			c.StudiesEnabled = flag
		case domain.CommandStudyRemoved, domain.CommandUnenroll:
			c.Study = &domain.StudyRef{Object: domain.Object(object), Key: key}
			if c.Type == domain.CommandUnenroll {
				c.Reason = domain.Reason(reason)
			}
		case domain.CommandAddonUninstalled:
			c.AddonID, c.Sideload = addonID, flag
		case domain.CommandPrefChanged:
			c.Preference, c.Sideload = pref, flag
		}
		if extra { // a field of another type must be refused
			c.Preference = pref
		}
		err := c.Validate()
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnknownCommandType) {
				t.Fatalf("validate: got %v, want an error wrapping ErrInvalid or ErrUnknownCommandType", err)
			}
			return
		}
		if extra && pref != "" && c.Type != domain.CommandPrefChanged {
			t.Fatalf("a %s with preference %q validated, want it refused", c.Type, pref)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal a valid command: %v", err)
		}
		var viaJSON domain.Command
		if err := json.Unmarshal(b, &viaJSON); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if err := viaJSON.Validate(); err != nil {
			t.Fatalf("a valid command is invalid after a JSON round trip: %v\n%s", err, b)
		}
		m, err := msgpack.Marshal(c)
		if err != nil {
			t.Fatalf("msgpack a valid command: %v", err)
		}
		var viaMsgpack domain.Command
		if err := msgpack.Unmarshal(m, &viaMsgpack); err != nil {
			t.Fatalf("unmsgpack: %v", err)
		}
		if err := viaMsgpack.Validate(); err != nil {
			t.Fatalf("a valid command is invalid after a msgpack round trip: %v", err)
		}
		checkDecide(t, s, c)
	})
}
