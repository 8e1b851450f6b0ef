package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

func TestStudyArgumentsReadsOnlyWhatStudydUses(t *testing.T) {
	t.Parallel()
	report := func(action string, args string) domain.RecipeReport {
		a, err := recipe.Parse([]byte(args))
		if err != nil {
			t.Fatal(err)
		}
		return domain.RecipeReport{ID: 7, Action: action, Status: domain.RecipeSuccess, Arguments: a}
	}
	tests := []struct {
		name, action, args string
		wantErr            string // "" = usable
	}{
		{"published 2018 preference-experiment", "preference-experiment",
			`{"slug":"s","experimentDocumentUrl":"https://x","preferenceName":"p.q","preferenceType":"integer","preferenceBranchType":"user","isHighPopulation":false,"isEnrollmentPaused":false,"branches":[{"slug":"a","value":1,"ratio":1},{"slug":"b","value":2,"ratio":3}]}`, ""},
		{"unknown fields everywhere", "preference-experiment",
			`{"slug":"s","preferenceName":"p","branches":[{"slug":"a","ratio":1,"colour":"red"}],"future":{"x":1}}`, ""},
		{"multi-preference, one preference per branch", "multi-preference-experiment",
			`{"slug":"s","branches":[{"slug":"a","ratio":1,"preferences":{"p":{"preferenceType":"boolean","preferenceBranchType":"default","preferenceValue":true}}}]}`, ""},
		{"multi-preference, two preferences in a branch", "multi-preference-experiment",
			`{"slug":"s","branches":[{"slug":"a","ratio":1,"preferences":{"p":{},"q":{}}}]}`, "sets 2 preferences"},
		{"bad preference type", "preference-experiment",
			`{"slug":"s","preferenceName":"p","preferenceType":"float","branches":[{"slug":"a","ratio":1}]}`, "preferenceType"},
		{"no branches", "preference-experiment", `{"slug":"s","preferenceName":"p"}`, "branches is empty"},
		{"wrongly typed slug", "preference-experiment", `{"slug":7,"preferenceName":"p","branches":[{"slug":"a","ratio":1}]}`, "arguments.slug is a JSON number"},
		{"fractional ratio", "preference-experiment", `{"slug":"s","preferenceName":"p","branches":[{"slug":"a","ratio":1.5}]}`, "ratio"},
		{"not an object", "opt-out-study", `["x"]`, "not a JSON object"},
		{"published 2018 opt-out-study", "opt-out-study",
			`{"name":"n","description":"d","addonUrl":"https://x/a.xpi","isEnrollmentPaused":true,"addonId":"a@b","addonVersion":"1"}`, ""},
		{"branched-addon-study", "branched-addon-study",
			`{"slug":"s","userFacingName":"u","userFacingDescription":"d","isEnrollmentPaused":false,"branches":[{"slug":"a","ratio":1,"extensionApiId":3},{"slug":"b","ratio":1,"extensionApiId":null}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := report(tt.action, tt.args)
			_, err := r.StudyArguments()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("StudyArguments: %v, want usable", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, domain.ErrInvalid)):
				t.Fatalf("StudyArguments: %v, want an error naming %q", err, tt.wantErr)
			}
			// Whatever the arguments say, the run carrying them is valid: the recipe's
			// problem is decided per recipe, never the run's.
			cmd := domain.Command{Type: domain.CommandRecipeRun, CommandID: "c", ClientID: "client-1", At: time.Unix(1, 0),
				RunnerStatus: domain.RunnerSuccess, Recipes: []domain.RecipeReport{r}}
			if err := cmd.Validate(); err != nil {
				t.Errorf("Validate: %v, want the run valid", err)
			}
		})
	}
}

func TestBranchedAddonStudyTelemetryHasBranch(t *testing.T) {
	t.Parallel()
	at := time.Unix(1528000000, 0)
	for _, tt := range []struct {
		name string
		e    domain.Event
		want map[string]string
	}{
		{"branched enroll", domain.Event{Type: domain.EventEnrolled, Object: domain.AddonStudy, Key: "9", Slug: "s", Branch: "b",
			AddonID: "a@x", AddonVersion: "1"}, map[string]string{"addonId": "a@x", "addonVersion": "1", "branch": "b"}},
		{"branched unenroll", domain.Event{Type: domain.EventUnenrolled, Object: domain.AddonStudy, Key: "9", Slug: "s", Branch: "b",
			AddonID: "a@x", AddonVersion: "1", Reason: "recipe-not-seen"},
			map[string]string{"addonId": "a@x", "addonVersion": "1", "branch": "b", "reason": "recipe-not-seen"}},
		{"2018 opt-out-study enroll", domain.Event{Type: domain.EventEnrolled, Object: domain.AddonStudy, Key: "9", Slug: "s",
			AddonID: "a@x", AddonVersion: "1"}, map[string]string{"addonId": "a@x", "addonVersion": "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			te, ok := tt.e.Telemetry("c", at)
			if !ok {
				t.Fatal("no telemetry")
			}
			if diff := cmp.Diff(tt.want, te.Extra); diff != "" {
				t.Errorf("extra (-want +got):\n%s", diff)
			}
		})
	}
}

// The recipe package's failed checks read as they did when they were the domain's: one
// "domain: invalid: " prefix per problem, and domain.ErrInvalid matches.
func TestRecipeChecksAreDomainInvalid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ action, args, want string }{
		{"opt-out-study", `["x"]`, "domain: invalid: arguments are not a JSON object"},
		{"preference-experiment", `{"slug":7}`, "domain: invalid: arguments.slug is a JSON number (want a string)"},
		{"preference-experiment", `{"slug":"s","preferenceName":"p","preferenceType":"float","preferenceBranchType":"x","branches":[{"slug":"a","ratio":1}]}`,
			`domain: invalid: arguments.preferenceType "float" (allowed: [string integer boolean])`},
	} {
		args, err := recipe.Parse([]byte(tt.args))
		if err != nil {
			t.Fatal(err)
		}
		_, err = domain.RecipeReport{ID: 1, Action: tt.action, Arguments: args}.StudyArguments()
		if err == nil || err.Error() != tt.want || !errors.Is(err, domain.ErrInvalid) || domain.ClassifyRejection(err) != domain.RejectInvalid {
			t.Errorf("StudyArguments(%s) = %v; want domain.ErrInvalid %q", tt.args, err, tt.want)
		}
	}
	if _, err := domain.ReadArguments(recipe.Arguments(`1`)); !errors.Is(err, domain.ErrInvalid) || !errors.Is(err, recipe.ErrInvalid) {
		t.Errorf("ReadArguments(1) = %v; want domain.ErrInvalid and recipe.ErrInvalid", err)
	}
}
