package recipe_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/recipe"
)

func TestArgumentsAreKeptWhole(t *testing.T) {
	t.Parallel()
	in := `{ "slug":"s", "zeta": {"b": 1, "a": [1.50, "x", null, true]}, "branches":[{"slug":"c","ratio":1,"value":"v","extra":1}], "big": 18446744073709551615 }`
	want := `{"big":18446744073709551615,"branches":[{"extra":1,"ratio":1,"slug":"c","value":"v"}],"slug":"s","zeta":{"a":[1.50,"x",null,true],"b":1}}`
	var a recipe.Arguments
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if string(a) != want {
		t.Fatalf("canonical JSON\n got %s\nwant %s", a, want)
	}
	b, err := msgpack.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back recipe.Arguments
	dec := msgpack.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	// msgpack has no decimal form for 1.50: it comes back as 1.5; all else is exact.
	if w := strings.Replace(want, "1.50", "1.5", 1); string(back) != w {
		t.Errorf("msgpack round trip\n got %s\nwant %s", back, w)
	}
	for _, null := range []string{"null"} {
		var n recipe.Arguments
		if err := json.Unmarshal([]byte(null), &n); err != nil || n != "" {
			t.Errorf("Unmarshal(%s) = %q, %v; want empty", null, n, err)
		}
	}
}

func TestChecksFailWithErrInvalidInTheirOwnWords(t *testing.T) {
	t.Parallel()
	nan, err := msgpack.Marshal(map[string]any{"x": math.NaN()})
	if err != nil {
		t.Fatal(err)
	}
	var a recipe.Arguments
	decodeErr := msgpack.Unmarshal(nan, &a)
	_, notObject := recipe.Arguments(`["x"]`).Study()
	_, wrongType := recipe.Arguments(`{"slug":7}`).Study()
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"NaN in msgpack", decodeErr, "recipe arguments hold NaN, which has no JSON form"},
		{"not an object", notObject, "arguments are not a JSON object"},
		{"wrong type", wrongType, "arguments.slug is a JSON number (want a string)"},
		{"preference type", recipe.CheckPreferenceTypes("arguments", "float", ""),
			`arguments.preferenceType "float" (allowed: [string integer boolean])`},
		{"branch type", recipe.CheckPreferenceTypes("arguments", "", "system"),
			`arguments.preferenceBranchType "system" (allowed: [user default])`},
	} {
		if !errors.Is(tt.err, recipe.ErrInvalid) || !strings.HasSuffix(tt.err.Error(), tt.want) || strings.Contains(tt.err.Error(), "invalid:") {
			t.Errorf("%s: %v; want recipe.ErrInvalid saying %q alone", tt.name, tt.err, tt.want)
		}
	}
	if err := recipe.CheckPreferenceTypes("arguments", "integer", "default"); err != nil {
		t.Errorf("CheckPreferenceTypes(integer, default) = %v", err)
	}
}
