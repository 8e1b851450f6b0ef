package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/recipe"
)

// Small pools so that generated commands collide: studies share preferences and
// add-ons, actions own several studies, and removals hit studies in every state.
var (
	poolPrefSlugs  = []string{"pref-a", "pref-b", "pref-c"}
	poolPrefs      = []string{"browser.a", "browser.b"}
	poolAddonIDs   = []domain.RecipeID{101, 102, 103}
	poolAddons     = []string{"a@shield", "b@shield"}
	poolPrefActs   = []string{"preference-experiment", "multi-preference-experiment"}
	poolAddonActs  = []string{"opt-out-study", "branched-addon-study"}
	poolAllActions = []string{"preference-experiment", "multi-preference-experiment", "opt-out-study",
		"branched-addon-study", "console-log"}
)

// genRecipe draws one recipe report that passes validation.
func genRecipe(t *rapid.T, id domain.RecipeID, kind int) domain.RecipeReport {
	status := rapid.SampledFrom(domain.RecipeStatuses).Draw(t, "recipe status")
	switch kind {
	case 0: // preference study
		return domain.RecipeReport{ID: id, Action: rapid.SampledFrom(poolPrefActs).Draw(t, "pref action"), Status: status,
			Arguments: recipe.Must(recipe.Study{
				Slug:             rapid.SampledFrom(poolPrefSlugs).Draw(t, "slug"),
				PreferenceName:   rapid.SampledFrom(poolPrefs).Draw(t, "preference"),
				IsHighPopulation: rapid.Bool().Draw(t, "highpop"),
				Branches:         []recipe.Branch{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: uint64(rapid.IntRange(0, 3).Draw(t, "ratio"))}},
			})}
	case 1: // add-on study
		args := recipe.Study{Name: fmt.Sprintf("addon-%d", id)}
		if rapid.Bool().Draw(t, "branched") {
			args.Branches = []recipe.Branch{{Slug: "x", Ratio: 1}, {Slug: "y", Ratio: 1}}
		}
		switch status {
		case domain.RecipeSuccess:
			args.AddonID = rapid.SampledFrom(poolAddons).Draw(t, "addon")
			args.AddonVersion = "1.0"
		case domain.RecipeExecutionError:
			if rapid.Bool().Draw(t, "install error") {
				args.InstallError = "AddonStudies.jsm:1:1 Error"
			}
		}
		return domain.RecipeReport{ID: id, Action: rapid.SampledFrom(poolAddonActs).Draw(t, "addon action"), Status: status, Arguments: recipe.Must(args)}
	}
	return domain.RecipeReport{ID: id, Action: "console-log", Status: status}
}

// genCommand draws one valid command at roughly hour h (sometimes earlier: stale runs).
func genCommand(t *rapid.T, n int, h time.Time) domain.Command {
	c := domain.Command{CommandID: fmt.Sprintf("c%d", n), ClientID: client, At: h}
	switch rapid.IntRange(0, 9).Draw(t, "command kind") {
	case 0, 1, 2, 3, 4:
		c.Type = domain.CommandRecipeRun
		c.RunnerStatus = domain.RunnerSuccess
		if rapid.IntRange(0, 9).Draw(t, "fetch fails") == 0 {
			c.RunnerStatus = rapid.SampledFrom(domain.RunnerStatuses).Draw(t, "runner status")
		}
		if c.RunnerStatus != domain.RunnerSuccess {
			break
		}
		for _, a := range rapid.SliceOfNDistinct(rapid.SampledFrom(poolAllActions), 0, len(poolAllActions), func(s string) string { return s }).Draw(t, "actions") {
			st := domain.ActionSuccess
			if rapid.IntRange(0, 4).Draw(t, "action fails") == 0 {
				st = rapid.SampledFrom(domain.ActionStatuses).Draw(t, "action status")
			}
			c.Actions = append(c.Actions, domain.ActionReport{Name: a, Status: st})
		}
		prefIDs := []domain.RecipeID{1, 2, 3, 4}
		for _, id := range rapid.SliceOfNDistinct(rapid.SampledFrom(append(prefIDs, append(poolAddonIDs, 7)...)), 0, 6, func(r domain.RecipeID) domain.RecipeID { return r }).Draw(t, "recipes") {
			kind := 0
			switch {
			case id >= 100:
				kind = 1
			case id == 7:
				kind = 2
			}
			c.Recipes = append(c.Recipes, genRecipe(t, id, kind))
		}
	case 5:
		c.Type = domain.CommandOptOut
		c.StudiesEnabled = rapid.Bool().Draw(t, "enabled")
	case 6:
		c.Type = domain.CommandStudyRemoved
		c.Study = genStudyRef(t)
	case 7:
		c.Type = domain.CommandAddonUninstalled
		c.AddonID = rapid.SampledFrom(poolAddons).Draw(t, "addon")
		c.Sideload = rapid.Bool().Draw(t, "sideload")
	case 8:
		c.Type = domain.CommandPrefChanged
		c.Preference = rapid.SampledFrom(poolPrefs).Draw(t, "preference")
		c.Sideload = rapid.Bool().Draw(t, "sideload")
	case 9:
		c.Type = domain.CommandUnenroll
		c.Study = genStudyRef(t)
		if rapid.Bool().Draw(t, "with reason") {
			c.Reason = rapid.SampledFrom(domain.Reasons(c.Study.Object)).Draw(t, "reason")
		}
	}
	return c
}

func genStudyRef(t *rapid.T) *domain.StudyRef {
	if rapid.Bool().Draw(t, "addon study") {
		return &domain.StudyRef{Object: domain.AddonStudy, Key: rapid.SampledFrom(poolAddonIDs).Draw(t, "recipe id").String()}
	}
	return &domain.StudyRef{Object: domain.PreferenceStudy, Key: rapid.SampledFrom(poolPrefSlugs).Draw(t, "slug")}
}

// replayed is the part of a client's state that its events alone determine; Action,
// LastSeen and LastRunAt are carried only by the state in each commit.
type replayed struct {
	StudiesDisabled bool
	Enrollments     map[domain.StudyRef]domain.Enrollment
}

func project(s domain.ClientState) replayed {
	r := replayed{StudiesDisabled: s.StudiesDisabled, Enrollments: map[domain.StudyRef]domain.Enrollment{}}
	for _, e := range s.Enrollments {
		e.Action, e.LastSeen = "", time.Time{}
		r.Enrollments[e.Study()] = e
	}
	return r
}

// fold applies one event recorded at time at, the way a projection replays the log.
func (r *replayed) fold(e domain.Event, at time.Time) {
	en := r.Enrollments[e.Study()]
	switch e.Type {
	case domain.EventStudiesOptOutChanged:
		r.StudiesDisabled = !e.StudiesEnabled
		return
	case domain.EventEnrolled:
		en = domain.Enrollment{Object: e.Object, Key: e.Key, Slug: e.Slug, EnrollmentID: e.EnrollmentID, Branch: e.Branch,
			ExperimentType: e.ExperimentType, Preference: e.Preference, AddonID: e.AddonID, AddonVersion: e.AddonVersion,
			EnrolledAt: at, Failures: en.Failures, PreferenceType: e.PreferenceType, PreferenceBranchType: e.PreferenceBranchType,
			BranchValue: e.BranchValue, Ratios: e.Ratios}
	case domain.EventEnrollFailed:
		en.Object, en.Key, en.Slug, en.Reason = e.Object, e.Key, e.Slug, e.Reason
		en.Failures++
	case domain.EventUnenrolled:
		en.EndedAt, en.Reason = at, e.Reason
	default:
		return
	}
	en.State = e.To
	r.Enrollments[e.Study()] = en
}

func TestDecideProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		var s domain.ClientState
		replay := replayed{Enrollments: map[domain.StudyRef]domain.Enrollment{}}
		ended := map[domain.StudyRef]bool{}
		h := t0
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		for n := range steps {
			h = h.Add(time.Duration(rapid.IntRange(-1, 3).Draw(t, "hours")) * time.Hour)
			c := genCommand(t, n, h)
			if err := c.Validate(); err != nil {
				t.Fatalf("generator made an invalid command: %v", err)
			}
			d, err := fsm.Decide(context.Background(), s, c)
			if err != nil {
				if !errors.Is(err, domain.ErrIllegalTransition) && !errors.Is(err, domain.ErrStaleRun) {
					t.Fatalf("step %d %s: got %v, want only illegal-transition or stale-run errors for valid commands", n, c.Type, err)
				}
				continue // a refused command changes nothing
			}
			running := map[domain.StudyRef]domain.State{}
			for _, e := range d.Events {
				if err := e.Validate(); err != nil {
					t.Fatalf("step %d: invalid event %v: %v", n, e, err)
				}
				if err := fsm.CheckTransition(e); err != nil {
					t.Fatalf("step %d: %v", n, err)
				}
				if e.Type.Method() == "" {
					replay.fold(e, c.At)
					continue
				}
				from, ok := running[e.Study()]
				if !ok {
					from = s.StateOf(e.Study())
				}
				if e.From != from {
					t.Fatalf("step %d: event %v starts from %s, but the study was %s", n, e, e.From, from)
				}
				if ended[e.Study()] {
					t.Fatalf("step %d: event %v for a study that already ended", n, e)
				}
				if e.Type == domain.EventUnenrolled {
					ended[e.Study()] = true
				}
				running[e.Study()] = e.To
				replay.fold(e, c.At)
			}
			for study := range ended {
				if got := d.State.StateOf(study); got != domain.StateUnenrolled {
					t.Fatalf("step %d: ended study %s is %s again", n, study, got)
				}
			}
			if err := d.State.Validate(); err != nil {
				t.Fatalf("step %d: state invalid: %v", n, err)
			}
			prefOwner := map[string]string{}
			for _, en := range d.State.Active() {
				if en.Object != domain.PreferenceStudy {
					continue
				}
				if other, ok := prefOwner[en.Preference]; ok {
					t.Fatalf("step %d: preference %s belongs to enrolled studies %s and %s", n, en.Preference, other, en.Key)
				}
				prefOwner[en.Preference] = en.Key
			}
			if diff := cmp.Diff(project(d.State), replay); diff != "" {
				t.Fatalf("step %d: state differs from the replay of its events (-state +replay):\n%s", n, diff)
			}
			s = d.State
		}
	})
}

// genVersioned draws a command as genCommand does, sent by Firefox v: statuses its
// version did not send are replaced by ones it did, later recipes carry the later
// statuses, rollout recipes and graduations appear, and unenroll reasons are any its
// version sent.
func genVersioned(t *rapid.T, n int, h time.Time, v domain.FirefoxVersion) domain.Command {
	if rapid.IntRange(0, 9).Draw(t, "graduate") == 0 {
		return domain.Command{Type: domain.CommandRolloutGraduated, CommandID: fmt.Sprintf("c%d", n), ClientID: client, At: h,
			FirefoxVersion: versionString(v), Study: &domain.StudyRef{Object: domain.PreferenceRollout, Key: rapid.SampledFrom([]string{"ro-a", "ro-b"}).Draw(t, "rollout")},
			Reason: rapid.SampledFrom([]domain.Reason{"", domain.ReasonGraduateAllPrefsMatch, domain.ReasonGraduateInGraduationSet}).Draw(t, "graduate reason")}
	}
	c := genCommand(t, n, h)
	c.FirefoxVersion = versionString(v)
	if c.RunnerStatus.SentBy(v) != nil {
		c.RunnerStatus = domain.RunnerServerError
	}
	for i := range c.Actions {
		if c.Actions[i].Status.SentBy(v) != nil {
			c.Actions[i].Status = domain.ActionSuccess
		}
	}
	for i := range c.Recipes {
		r := &c.Recipes[i]
		if v != 0 && v.Has(domain.RuleFilterStatuses) && rapid.IntRange(0, 3).Draw(t, "later status") == 0 {
			r.Status = rapid.SampledFrom(domain.LaterRecipeStatuses).Draw(t, "later recipe status")
		}
		if r.Status.SentBy(v) != nil {
			r.Status = domain.RecipeSuccess
		}
	}
	if c.Type == domain.CommandRecipeRun && c.RunnerStatus == domain.RunnerSuccess && rapid.Bool().Draw(t, "rollouts") {
		for i, slug := range rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"ro-a", "ro-b"}), 1, 2, func(s string) string { return s }).Draw(t, "rollout slugs") {
			args := recipe.Study{Slug: slug, RolloutPreferences: []recipe.RolloutPreference{{
				PreferenceName: rapid.SampledFrom([]string{"r.x", "r.y"}).Draw(t, "rollout pref"), Value: []byte(rapid.SampledFrom([]string{"1", "2"}).Draw(t, "value"))}}}
			action := "preference-rollout"
			if rapid.IntRange(0, 3).Draw(t, "rollback") == 0 {
				action, args = "preference-rollback", recipe.Study{RolloutSlug: slug}
			}
			c.Recipes = append(c.Recipes, domain.RecipeReport{ID: domain.RecipeID(500 + i), Action: action, Status: domain.RecipeSuccess,
				Arguments: recipe.Must(args)})
		}
	}
	c = currentShape(v, c)
	if c.Type == domain.CommandUnenroll {
		var allowed []domain.Reason
		for _, r := range domain.AllReasons(c.Study.Object) {
			if domain.ReasonSentBy(c.Study.Object, r, v) == nil {
				allowed = append(allowed, r)
			}
		}
		c.Reason = ""
		if rapid.Bool().Draw(t, "with reason") {
			c.Reason = rapid.SampledFrom(allowed).Draw(t, "reason")
		}
	}
	return c
}

func versionString(v domain.FirefoxVersion) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%d.0", v)
}

// TestDecideVersionedProperties: whatever Firefox versions send, in any order, every
// decided event is valid and a legal edge of its object's machine, starts from the
// state its study or rollout was in, an ended study never comes back, and no two
// enrolled preference studies hold one preference (multi-preference ones included).
func TestDecideVersionedProperties(t *testing.T) {
	t.Parallel()
	versions := []domain.FirefoxVersion{0, 60, 64, 65, 71, 72, 95, 96, 120}
	rapid.Check(t, func(t *rapid.T) {
		var s domain.ClientState
		ended := map[domain.StudyRef]bool{}
		h := t0
		for n := range rapid.IntRange(1, 40).Draw(t, "steps") {
			h = h.Add(time.Duration(rapid.IntRange(-1, 100).Draw(t, "hours")) * time.Hour)
			v := rapid.SampledFrom(versions).Draw(t, "version")
			c := genVersioned(t, n, h, v)
			if err := c.Validate(); err != nil {
				t.Fatalf("generator made an invalid command for Firefox %s: %v", v, err)
			}
			d, err := fsm.Decide(context.Background(), s, c)
			if err != nil {
				if !errors.Is(err, domain.ErrIllegalTransition) && !errors.Is(err, domain.ErrStaleRun) {
					t.Fatalf("step %d %s (Firefox %s): got %v, want only illegal-transition or stale-run errors", n, c.Type, v, err)
				}
				continue
			}
			running := map[domain.StudyRef]domain.State{}
			for _, e := range d.Events {
				if err := e.Validate(); err != nil {
					t.Fatalf("step %d: invalid event %v: %v", n, e, err)
				}
				if err := fsm.CheckTransition(e); err != nil {
					t.Fatalf("step %d: %v", n, err)
				}
				if e.FirefoxVersion != v {
					t.Fatalf("step %d: event %v records Firefox %s, the command was %s", n, e, e.FirefoxVersion, v)
				}
				if e.Type.Method() == "" {
					continue
				}
				from, ok := running[e.Study()]
				if !ok {
					from = s.StateOf(e.Study())
				}
				if e.From != from {
					t.Fatalf("step %d: event %v starts from %s, but it was %s", n, e, e.From, from)
				}
				if ended[e.Study()] && e.Type != domain.EventUnenrollFailed {
					t.Fatalf("step %d: event %v for a study that already ended", n, e)
				}
				if e.Type == domain.EventUnenrolled && !e.Object.IsRollout() {
					ended[e.Study()] = true
				}
				running[e.Study()] = e.To
			}
			for study := range ended {
				if got := d.State.StateOf(study); got != domain.StateUnenrolled {
					t.Fatalf("step %d: ended study %s is %s again", n, study, got)
				}
			}
			if err := d.State.Validate(); err != nil {
				t.Fatalf("step %d: state invalid: %v", n, err)
			}
			owner := map[string]string{}
			for _, en := range d.State.Enrollments {
				// Rollouts are left out: Firefox checks their conflicts on enrollment only, so
				// an update may make two active rollouts share a preference.
				if en.Object != domain.PreferenceStudy || en.State != domain.StateEnrolled {
					continue
				}
				for _, p := range append([]string{en.Preference}, en.Preferences...) {
					if p == "" {
						continue
					}
					k := string(en.Object) + " " + p
					if other, ok := owner[k]; ok && other != en.Key {
						t.Fatalf("step %d: %s %s belongs to %s and %s", n, en.Object, p, other, en.Key)
					}
					owner[k] = en.Key
				}
			}
			s = d.State
		}
	})
}
