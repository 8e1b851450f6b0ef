package wire_test

import (
	"errors"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/wire"
)

// FuzzDecodeCommand feeds the decoder arbitrary bodies, as msgpack and as JSON. It must
// never panic, must answer every body with a command or a classified error, and must
// never allocate more than a small multiple of the body's size: the run under
// `make fuzz` sets GOMEMLIMIT and a virtual-memory ulimit, so a decoder that trusts a
// header dies instead of passing.
func FuzzDecodeCommand(f *testing.F) {
	good, err := wire.EncodeCommand(sampleRun())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", good)
	f.Add("", hugeRecipes)
	f.Add(wire.ContentTypeJSON, []byte(sampleRunJSON))
	f.Add("", []byte(`{"type":"opt_out","command_id":"o1","client_id":"c1","at":"2018-03-13T09:00:00Z"}`))
	for _, h := range hostile() {
		f.Add(h.contentType, h.body)
	}
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		var err error
		decode := func() uint64 {
			metrics.Read(sample)
			before := sample[0].Value.Uint64()
			_, err = wire.DecodeCommand(contentType, body)
			metrics.Read(sample)
			return sample[0].Value.Uint64() - before
		}
		// The counter is process-wide and the fuzzing engine allocates beside the
		// target: only an excess that repeats is the decoder's.
		if alloc, limit := decode(), uint64(256<<10+64*len(body)); alloc > limit {
			if alloc = decode(); alloc > limit {
				t.Fatalf("decoding %d bytes allocated %d bytes, want at most %d", len(body), alloc, limit)
			}
		}
		if err != nil && !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrUnsupportedContent) && !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("an unclassified error: %v", err)
		}
	})
}

const sampleRunJSON = `{"type":"recipe_run","command_id":"run-1","client_id":"client-1","at":"2018-03-12T14:00:00Z",
  "runner_status":"RUNNER_SUCCESS","actions":[{"name":"preference-experiment","status":"ACTION_SUCCESS"}],
  "recipes":[{"id":42,"action":"preference-experiment","status":"RECIPE_SUCCESS","arguments":{"slug":"pref-flip-1",
  "preferenceName":"browser.feature","branches":[{"slug":"control","ratio":1},{"slug":"treatment","ratio":1}]}}]}`

func sampleRun() domain.Command {
	return domain.Command{
		Type: domain.CommandRecipeRun, CommandID: "run-1", ClientID: "client-1",
		At:           time.Date(2018, 3, 12, 14, 0, 0, 0, time.UTC),
		RunnerStatus: "RUNNER_SUCCESS",
		Actions:      []domain.ActionReport{{Name: "preference-experiment", Status: "ACTION_SUCCESS"}},
		Recipes: []domain.RecipeReport{{ID: 42, Action: "preference-experiment", Status: "RECIPE_SUCCESS",
			Arguments: recipe.Must(map[string]any{"slug": "pref-flip-1", "preferenceName": "browser.feature",
				"branches": []map[string]any{{"slug": "control", "ratio": 1}, {"slug": "treatment", "ratio": 1}}})}},
	}
}
