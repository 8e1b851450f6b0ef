package recipe

import (
	"encoding/json"
	"errors"
	"slices"
)

// Study is the fields of a recipe's arguments that studyd reads; every other
// field stays in Arguments, unread. (omitempty only shapes arguments a program
// builds with New.)
type Study struct {
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
func (a Study) StudySlug() string {
	if a.Slug != "" {
		return a.Slug
	}
	return a.Name
}

// Ratios returns the branches' slugs and ratios: the study's target split.
func (a Study) Ratios() []Ratio {
	if len(a.Branches) == 0 {
		return nil
	}
	out := make([]Ratio, len(a.Branches))
	for i, b := range a.Branches {
		out[i] = Ratio{Slug: b.Slug, Ratio: b.Ratio}
	}
	return out
}

// Ratio is one branch of a study and its weight in ratio sampling.
type Ratio struct {
	Slug  string `msgpack:"slug" json:"slug"`
	Ratio uint64 `msgpack:"ratio" json:"ratio"`
}

// Study reads the fields studyd uses. It fails when the arguments are not an object or
// a field studyd uses has the wrong JSON type; the caller decides what that means for
// the recipe (domain.RecipeReport.StudyArguments). The Study's slices and maps are
// shared with every other caller reading the same arguments: read them, never modify.
func (a Arguments) Study() (Study, error) {
	if s, ok := studyOfMemo.get(string(a)); ok {
		return s, nil
	}
	s, err := a.study()
	if err == nil {
		studyOfMemo.put(string(a), s)
	}
	return s, err
}

func (a Arguments) study() (Study, error) {
	var s Study
	if a == "" {
		return s, nil
	}
	if a[0] != '{' {
		return s, invalidf("arguments are not a JSON object")
	}
	if err := json.Unmarshal([]byte(a), &s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return s, invalidf("arguments.%s is a JSON %s (want %s)", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return s, invalidf("arguments: %w", err)
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

// Preference types and branch types a preference study recipe may name (Normandy's
// preference-experiment schema).
var (
	PreferenceTypes       = []string{"string", "integer", "boolean"}
	PreferenceBranchTypes = []string{"user", "default"}
)

// CheckPreferenceTypes checks a preference type and branch type when they are given;
// field names where they were read (e.g. "arguments").
func CheckPreferenceTypes(field, prefType, branchType string) error {
	if prefType != "" && !slices.Contains(PreferenceTypes, prefType) {
		return invalidf("%s.preferenceType %q (allowed: %v)", field, prefType, PreferenceTypes)
	}
	if branchType != "" && !slices.Contains(PreferenceBranchTypes, branchType) {
		return invalidf("%s.preferenceBranchType %q (allowed: %v)", field, branchType, PreferenceBranchTypes)
	}
	return nil
}

// BranchPreference returns what branch slug of a preference study sets: the
// preference, its type and branch type, and the branch's value as JSON. A
// preference-experiment names one preference for all branches; a
// multi-preference-experiment branch names its own.
func (a Study) BranchPreference(slug string) (name, prefType, branchType string, value json.RawMessage) {
	for _, b := range a.Branches {
		if b.Slug != slug {
			continue
		}
		if a.PreferenceName != "" {
			return a.PreferenceName, a.PreferenceType, a.PreferenceBranchType, b.Value
		}
		for n, p := range b.Preferences {
			return n, p.PreferenceType, p.PreferenceBranchType, p.PreferenceValue
		}
	}
	return "", "", "", nil
}

// BranchPreferences returns the preferences branch slug sets, sorted: one for a
// preference-experiment, one or more for a multi-preference-experiment branch.
func (a Study) BranchPreferences(slug string) []string {
	for _, b := range a.Branches {
		if b.Slug != slug {
			continue
		}
		if a.PreferenceName != "" {
			return []string{a.PreferenceName}
		}
		out := make([]string, 0, len(b.Preferences))
		for n := range b.Preferences {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// BranchPreferencesJSON is a multi-preference-experiment branch's preferences object
// as canonical JSON (what Firefox kept of the branch).
func (a Study) BranchPreferencesJSON(slug string) Arguments {
	for _, b := range a.Branches {
		if b.Slug == slug {
			c, err := New(b.Preferences)
			if err != nil {
				return ""
			}
			return c
		}
	}
	return ""
}

// Preferences returns every preference any branch of a preference study sets: the
// preferences an enrollment would conflict on.
func (a Study) Preferences() []string {
	if a.PreferenceName != "" {
		return []string{a.PreferenceName}
	}
	var out []string
	for _, b := range a.Branches {
		for n := range b.Preferences {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}
