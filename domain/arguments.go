package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxArgumentsLen bounds one recipe's arguments in canonical JSON. It is a bound on a
// hostile client, not a schema: real recipes' arguments are a few hundred bytes, and
// they are recorded in the log with the recipe's uptake.
const MaxArgumentsLen = 64 << 10

// RecipeArguments is a recipe's arguments object exactly as Normandy's server published
// it (for an add-on study, with the install outcome the client adds), held as canonical
// JSON: object keys sorted, no insignificant space, numbers as written. It is the
// recipe's data, not studyd's schema: every field of every action is accepted and kept,
// and only the fields studyd uses are read (StudyArguments). Commands carry it as a
// JSON object or a msgpack map; "" is a recipe without arguments.
type RecipeArguments string

// NewRecipeArguments returns v (typically a map or a struct with json tags) as recipe
// arguments.
func NewRecipeArguments(v any) (RecipeArguments, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	return ParseRecipeArguments(b)
}

// MustRecipeArguments is NewRecipeArguments for arguments built by the program itself
// (examples, tests, the simulator); it panics if v has no JSON form.
func MustRecipeArguments(v any) RecipeArguments {
	a, err := NewRecipeArguments(v)
	if err != nil {
		panic(err)
	}
	return a
}

// ParseRecipeArguments canonicalises one JSON value. null is "".
func ParseRecipeArguments(b []byte) (RecipeArguments, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("recipe arguments: trailing data after the arguments")
	}
	return canonical(v)
}

// canonical encodes a decoded JSON value: encoding/json sorts map keys and writes a
// json.Number as it was read.
func canonical(v any) (RecipeArguments, error) {
	if v == nil {
		return "", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	return RecipeArguments(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// MarshalJSON writes the arguments as the JSON value they are (null when empty).
func (a RecipeArguments) MarshalJSON() ([]byte, error) {
	if a == "" {
		return []byte("null"), nil
	}
	return []byte(a), nil
}

// UnmarshalJSON accepts any JSON value and keeps it whole, canonicalised.
func (a *RecipeArguments) UnmarshalJSON(b []byte) error {
	v, err := ParseRecipeArguments(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// EncodeMsgpack writes the arguments as a msgpack value (maps with sorted keys).
func (a RecipeArguments) EncodeMsgpack(enc *msgpack.Encoder) error {
	if a == "" {
		return enc.EncodeNil()
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(a)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("recipe arguments: %w", err)
	}
	enc.SetSortMapKeys(true)
	return enc.Encode(fromJSONNumbers(v))
}

// DecodeMsgpack reads any msgpack value whose map keys are strings and keeps it whole,
// as canonical JSON.
func (a *RecipeArguments) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	v, err = toJSONValue(v)
	if err != nil {
		return err
	}
	out, err := canonical(v)
	if err != nil {
		return err
	}
	*a = out
	return nil
}

// fromJSONNumbers turns json.Numbers into msgpack integers or floats.
func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSONNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromJSONNumbers(e)
		}
	}
	return v
}

// toJSONValue checks that a decoded msgpack value has a JSON form: string map keys,
// finite numbers. Integers keep their exact decimal form.
func toJSONValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return v, nil
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return json.Number(fmt.Sprint(x)), nil
	case float32:
		return toJSONValue(float64(x))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("%w: recipe arguments hold %v, which has no JSON form", ErrInvalid, x)
		}
		return x, nil
	case []byte:
		return string(x), nil
	case map[string]any:
		for k, e := range x {
			j, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case []any:
		for i, e := range x {
			j, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	}
	return nil, fmt.Errorf("%w: recipe arguments hold a %T, which has no JSON form (map keys must be strings)", ErrInvalid, v)
}

// StudyArguments are the fields of a recipe's arguments that studyd reads; every other
// field stays in RecipeArguments, unread. (omitempty only shapes arguments a program
// builds with NewRecipeArguments.)
type StudyArguments struct {
	Slug string `json:"slug,omitempty"`
	// Name is the 2018 opt-out-study's name: its telemetry value. An alias of Slug.
	Name                 string   `json:"name,omitempty"`
	Branches             []Branch `json:"branches,omitempty"`
	PreferenceName       string   `json:"preferenceName,omitempty"`
	PreferenceType       string   `json:"preferenceType,omitempty"`
	PreferenceBranchType string   `json:"preferenceBranchType,omitempty"`
	IsHighPopulation     bool     `json:"isHighPopulation,omitempty"`
	// IsEnrollmentPaused stops new enrollments; enrolled clients stay and are seen.
	IsEnrollmentPaused bool `json:"isEnrollmentPaused,omitempty"`
	// The add-on install outcome the client adds: the installed add-on, or the error
	// it saw (file:line:col ErrorName).
	AddonID      string `json:"addonId,omitempty"`
	AddonVersion string `json:"addonVersion,omitempty"`
	InstallError string `json:"installError,omitempty"`
	// Outcomes a later client adds (Firefox 65 and later): why a preference study or a
	// rollout failed to enroll (enrollFailed's reason, and the preference it names),
	// why a branched add-on study's update failed (updateFailed's reason).
	EnrollError           string `json:"enrollError,omitempty"`
	EnrollErrorPreference string `json:"enrollErrorPreference,omitempty"`
	UpdateError           string `json:"updateError,omitempty"`
	// A preference rollout's preferences; a rollback's rollout.
	RolloutPreferences []RolloutPreference `json:"preferences,omitempty"`
	RolloutSlug        string              `json:"rolloutSlug,omitempty"`
}

// RolloutPreference is one preference a preference rollout sets on the default branch.
type RolloutPreference struct {
	PreferenceName string          `json:"preferenceName"`
	Value          json.RawMessage `json:"value"`
}

// Branch is one branch of a study recipe. Value is a preference-experiment branch's
// preference value; Preferences a multi-preference-experiment branch's preferences.
type Branch struct {
	Slug        string                      `json:"slug"`
	Ratio       uint64                      `json:"ratio"`
	Value       json.RawMessage             `json:"value,omitempty"`
	Preferences map[string]BranchPreference `json:"preferences,omitempty"`
	// ExtensionAPIID is a branched-addon-study branch's add-on; null (or absent) for a
	// branch without one, e.g. its control.
	ExtensionAPIID json.RawMessage `json:"extensionApiId,omitempty"`
}

// HasAddon reports whether a branched-addon-study branch installs an add-on.
func (b Branch) HasAddon() bool {
	return len(b.ExtensionAPIID) > 0 && string(b.ExtensionAPIID) != "null"
}

// BranchPreference is one preference of a multi-preference-experiment branch.
type BranchPreference struct {
	PreferenceType       string          `json:"preferenceType"`
	PreferenceBranchType string          `json:"preferenceBranchType"`
	PreferenceValue      json.RawMessage `json:"preferenceValue"`
}

// StudySlug is the study's name: slug, or the 2018 add-on study's name.
func (a StudyArguments) StudySlug() string {
	if a.Slug != "" {
		return a.Slug
	}
	return a.Name
}

// Ratios returns the branches' slugs and ratios: the study's target split.
func (a StudyArguments) Ratios() []BranchRatio {
	if len(a.Branches) == 0 {
		return nil
	}
	out := make([]BranchRatio, len(a.Branches))
	for i, b := range a.Branches {
		out[i] = BranchRatio{Slug: b.Slug, Ratio: b.Ratio}
	}
	return out
}

// BranchRatio is one branch of a study and its weight in ratio sampling.
type BranchRatio struct {
	Slug  string `msgpack:"slug" json:"slug"`
	Ratio uint64 `msgpack:"ratio" json:"ratio"`
}

// Study reads the fields studyd uses. It fails when the arguments are not an object or
// a field studyd uses has the wrong JSON type; the caller decides what that means for
// the recipe (StudyRecipe).
func (a RecipeArguments) Study() (StudyArguments, error) {
	var s StudyArguments
	if a == "" {
		return s, nil
	}
	if a[0] != '{' {
		return s, fmt.Errorf("%w: arguments are not a JSON object", ErrInvalid)
	}
	if err := json.Unmarshal([]byte(a), &s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return s, fmt.Errorf("%w: arguments.%s is a JSON %s (want %s)", ErrInvalid, te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return s, fmt.Errorf("%w: arguments: %w", ErrInvalid, err)
	}
	return s, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "uint64":
		return "a non-negative integer"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return goKind
}
