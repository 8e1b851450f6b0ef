package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	natsadapter "github.com/studyd/studyd/adapters/nats"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/simulate"
)

// TestDecodeCommandKeepsPublishedArguments sends a recipe_run carrying every action's
// recipe exactly as Normandy's server published it, through the decoder studyd reads
// commands with, as JSON and as msgpack: both are accepted (unknown argument fields and
// all), the arguments come back whole and identical, and the command validates.
func TestDecodeCommandKeepsPublishedArguments(t *testing.T) {
	var recipes []string
	var want []domain.RecipeArguments
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
		a, err := domain.ParseRecipeArguments(p.Arguments)
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

	fromJSON, err := natsadapter.DecodeCommand(natsadapter.ContentTypeJSON, body)
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
	packed, err := natsadapter.EncodeCommand(fromJSON)
	if err != nil {
		t.Fatal(err)
	}
	fromMsgpack, err := natsadapter.DecodeCommand(natsadapter.ContentTypeMsgpack, packed)
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
	cmd, err := natsadapter.DecodeCommand(natsadapter.ContentTypeMsgpack, own)
	if err != nil {
		t.Fatalf("DecodeCommand(own msgpack): %v, want accepted", err)
	}
	if got, want := string(cmd.Recipes[0].Arguments), `{"nested":{"x":[1,"y",null]},"repeatEvery":7,"surveyId":"hb","weight":2.5}`; got != want {
		t.Errorf("own msgpack arguments: got %s, want %s", got, want)
	}

	// Top-level fields stay strict.
	if _, err := natsadapter.DecodeCommand(natsadapter.ContentTypeJSON, bytes.Replace(body, []byte(`"type"`), []byte(`"typo":1,"type"`), 1)); err == nil {
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
