package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
	"github.com/studyd/studyd/srm"
)

// TestDecodeCommandKeepsPublishedArguments sends a recipe_run carrying every action's
// recipe exactly as Normandy's server published it, through the decoder studyd reads
// commands with, as JSON and as msgpack: both are accepted (unknown argument fields and
// all), the arguments come back whole and identical, and the command validates.
func TestDecodeCommandKeepsPublishedArguments(t *testing.T) {
	var recipes []string
	var want []recipe.Arguments
	for _, action := range simulate.PublishedActions() {
		raw, err := simulate.PublishedJSON(action)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			ID        int             `json:"id"`
			Action    string          `json:"action"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		recipes = append(recipes, fmt.Sprintf(`{"id":%d,"action":%q,"status":"RECIPE_EXECUTION_ERROR","arguments":%s}`, p.ID, p.Action, p.Arguments))
		a, err := recipe.Parse(p.Arguments)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
	}
	if len(recipes) < 8 {
		t.Fatalf("got %d published recipes, want one per action", len(recipes))
	}
	body := []byte(`{"type":"recipe_run","command_id":"run-1","client_id":"client-1","at":"2018-06-01T00:00:00Z",` +
		`"runner_status":"RUNNER_SUCCESS","recipes":[` + string(bytes.Join(toBytes(recipes), []byte(","))) + `]}`)

	fromJSON, err := client.DecodeCommand(client.ContentTypeJSON, body)
	if err != nil {
		t.Fatalf("DecodeCommand(JSON): %v, want accepted", err)
	}
	check := func(name string, cmd domain.Command) {
		t.Helper()
		if err := cmd.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", name, err)
		}
		for i, r := range cmd.Recipes {
			if r.Arguments != want[i] {
				t.Errorf("%s: recipe %d arguments\n got %s\nwant %s", name, r.ID, r.Arguments, want[i])
			}
		}
	}
	check("json", fromJSON)

	// The native form: msgpack maps, decoded with unknown command fields refused.
	packed, err := client.EncodeCommand(fromJSON)
	if err != nil {
		t.Fatal(err)
	}
	fromMsgpack, err := client.DecodeCommand(client.ContentTypeMsgpack, packed)
	if err != nil {
		t.Fatalf("DecodeCommand(msgpack): %v, want accepted", err)
	}
	check("msgpack", fromMsgpack)

	// A msgpack body a client built itself, arguments as a plain map with fields studyd
	// has never heard of, integers and floats.
	own, err := msgpack.Marshal(map[string]any{"type": "recipe_run", "command_id": "run-2", "client_id": "client-1",
		"at": fromJSON.At, "runner_status": "RUNNER_SUCCESS",
		"recipes": []any{map[string]any{"id": 7, "action": "show-heartbeat", "status": "RECIPE_SUCCESS",
			"arguments": map[string]any{"surveyId": "hb", "repeatEvery": 7, "weight": 2.5, "nested": map[string]any{"x": []any{1, "y", nil}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := client.DecodeCommand(client.ContentTypeMsgpack, own)
	if err != nil {
		t.Fatalf("DecodeCommand(own msgpack): %v, want accepted", err)
	}
	if got, want := string(cmd.Recipes[0].Arguments), `{"nested":{"x":[1,"y",null]},"repeatEvery":7,"surveyId":"hb","weight":2.5}`; got != want {
		t.Errorf("own msgpack arguments: got %s, want %s", got, want)
	}

	// Top-level fields stay strict.
	if _, err := client.DecodeCommand(client.ContentTypeJSON, bytes.Replace(body, []byte(`"type"`), []byte(`"typo":1,"type"`), 1)); err == nil {
		t.Error("an unknown top-level field was accepted, want it refused")
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestHealthUsesRecordedRatios enrolls a fleet in a 50/25/25 preference study built from
// the published recipe and asks `health` without --ratios: the split the recipe asked
// for is the default, so a study split as asked is no sample-ratio mismatch (with equal
// weights it would be one, by far).
func TestHealthUsesRecordedRatios(t *testing.T) {
	t.Parallel()
	s, _, js := natstest.StartWith(t, natstest.Config{Listen: true})
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	h := app.NewHandler(eventlog.NewStore(js), app.Config{})
	p, err := simulate.Published("preference-experiment")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(p.Arguments), &m); err != nil {
		t.Fatal(err)
	}
	m["branches"] = []any{map[string]any{"slug": "control", "value": true, "ratio": 50},
		map[string]any{"slug": "treatment-a", "value": false, "ratio": 25},
		map[string]any{"slug": "treatment-b", "value": false, "ratio": 25}}
	args := recipe.Must(m)
	at := time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC)
	const clients = 600
	for i := range clients {
		id := domain.ClientID(fmt.Sprintf("client-%04d", i))
		cmd := domain.Command{Type: domain.CommandRecipeRun, CommandID: "run-" + string(id), ClientID: id,
			At: at.Add(time.Duration(i) * time.Second), RunnerStatus: domain.RunnerSuccess,
			Actions: []domain.ActionReport{{Name: p.Action, Status: domain.ActionSuccess}},
			Recipes: []domain.RecipeReport{{ID: p.ID, Action: p.Action, Status: domain.RecipeSuccess, Arguments: args}}}
		if _, err := h.Handle(ctx, cmd, app.Source{}); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	out, _, err := runCLI(t, "", "health", "--server", s.ClientURL(), "preference_study", "pref-flip-search-suggestions-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got srm.StudyHealth
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("health output %s: %v", out, err)
	}
	if got.Enrolled != clients || got.RatiosFrom != srm.RatiosRecipe || got.SRM {
		t.Fatalf("health: %d enrolled, ratios from %q, SRM %t (p %g); want %d, %q, no SRM",
			got.Enrolled, got.RatiosFrom, got.SRM, got.PValue, clients, srm.RatiosRecipe)
	}
	weights := map[string]float64{}
	for _, b := range got.Branches {
		weights[b.Branch] = b.Weight
	}
	if want := map[string]float64{"control": 50, "treatment-a": 25, "treatment-b": 25}; !maps.Equal(weights, want) {
		t.Errorf("health weights %v, want %v", weights, want)
	}
	// The same log against equal weights is a mismatch: the test above could fail.
	out, _, err = runCLI(t, "", "health", "--server", s.ClientURL(), "preference_study", "pref-flip-search-suggestions-1",
		"--ratios", "control=1,treatment-a=1,treatment-b=1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.SRM {
		t.Errorf("health with equal --ratios: %s (%v); want a sample-ratio mismatch", out, err)
	}
}
