package simulate

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

// The actions of the simulated runner: every run fetches and reports all of them. The
// 2018 remote actions, and the local actions of later Firefox whose recipes the server
// published in the same collection.
const (
	ActionPreference      = "preference-experiment"
	ActionMultiPreference = "multi-preference-experiment"
	ActionAddon           = "opt-out-study"
	ActionBranchedAddon   = "branched-addon-study"
	ActionHeartbeat       = "show-heartbeat"
	ActionConsoleLog      = "console-log"
	ActionRollout         = "preference-rollout"
	ActionRollback        = "preference-rollback"
	// actionUnknown is named by a recipe the runner has no action for: it is reported
	// RECIPE_INVALID_ACTION and never appears among the actions.
	actionUnknown = "show-survey"
)

// actions are the actions a run reports, in the order the runner ran them.
var actions = []string{ActionPreference, ActionMultiPreference, ActionAddon, ActionBranchedAddon,
	ActionHeartbeat, ActionConsoleLog, ActionRollout}

// publishedFS holds one recipe per action exactly as Normandy's server published it
// (arguments shaped by the action's own argumentsSchema); the catalogue is built from them.
//
//go:embed testdata/recipes/*.json
var publishedFS embed.FS

// PublishedRecipe is one recipe as the server published it.
type PublishedRecipe struct {
	ID        domain.RecipeID  `json:"id"`
	Action    string           `json:"action"`
	Arguments recipe.Arguments `json:"arguments"`
}

// Published returns the published recipe of action (its fixture under
// simulate/testdata/recipes), for the actions listed there.
func Published(action string) (PublishedRecipe, error) {
	b, err := PublishedJSON(action)
	if err != nil {
		return PublishedRecipe{}, err
	}
	var r PublishedRecipe
	if err := json.Unmarshal(b, &r); err != nil {
		return PublishedRecipe{}, fmt.Errorf("simulate: published recipe %s: %w", action, err)
	}
	return r, nil
}

// template returns the arguments of action's published recipe, decoded for editing.
func template(action string) map[string]any {
	r, err := Published(action)
	if err != nil {
		panic(err) // the fixtures are embedded: a missing one is a build defect
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(r.Arguments)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("simulate: published %s arguments: %v", action, err))
	}
	return m
}

// Recipe is one recipe of the simulated Normandy server: a study or another action.
type Recipe struct {
	ID     domain.RecipeID
	Action string
	// Object is the study kind, or "" for a recipe that runs no study.
	Object domain.Object
	// Slug is the study's slug (the add-on study's arguments.name, as in 2018).
	Slug           string
	Branches       []recipe.Ratio
	Preference     string // preference studies
	HighPopulation bool   // preference studies
	AddonID        string // add-on studies
	AddonVersion   string // add-on studies
	// The server sends the recipe on days [StartDay, EndDay); EndDay may lie beyond the
	// simulation, and a study whose recipe stops is ended by its action's finalize.
	StartDay, EndDay int
	// PausedFrom is the day from which the recipe carries isEnrollmentPaused (when
	// Paused): enrolled clients stay, new ones are not enrolled.
	Paused     bool
	PausedFrom int
	// Sample is the fraction of clients whose filter matches; Drop the fraction of
	// those that stop matching on a day during the recipe's life (e.g. after an update).
	Sample, Drop float64

	// ReviseDay, when set, is the day the server publishes a revision of a branched
	// add-on study (mixed fleets only): a new add-on version, and its last branch
	// removed.
	ReviseDay int

	// Arguments are the recipe's arguments as the server publishes them (before any
	// pause), built from the action's published recipe.
	Arguments recipe.Arguments
	base      map[string]any
	variants  *variants
}

// variants caches a recipe's arguments per (paused, install outcome): a client adds its
// install outcome to an add-on study's arguments.
type variants struct {
	mu sync.Mutex
	m  map[variantKey]recipe.Arguments
}

type variantKey struct {
	paused, revised          bool
	addonID, version, reason string
}

// Study returns the study the recipe runs, or false.
func (r Recipe) Study() (domain.StudyRef, bool) {
	return domain.RecipeReport{ID: r.ID, Action: r.Action, Arguments: r.Arguments}.Study()
}

// PausedOn reports whether the recipe's enrollment is paused on day.
func (r Recipe) PausedOn(day int) bool { return r.Paused && day >= r.PausedFrom }

// arguments are the recipe's arguments on day, with the install outcome a client adds
// (addonId and addonVersion, or installError; all empty for none).
func (r Recipe) arguments(day int, addonID, version, installError string) recipe.Arguments {
	k := variantKey{paused: r.PausedOn(day), revised: r.RevisedOn(day), addonID: addonID, version: version, reason: installError}
	if k == (variantKey{}) || r.base == nil {
		return r.Arguments
	}
	r.variants.mu.Lock()
	defer r.variants.mu.Unlock()
	if a, ok := r.variants.m[k]; ok {
		return a
	}
	m := make(map[string]any, len(r.base)+3)
	for key, v := range r.base {
		m[key] = v
	}
	if k.paused {
		m["isEnrollmentPaused"] = true
	}
	if k.revised {
		bs := m["branches"].([]any)
		m["branches"] = bs[:len(bs)-1]
	}
	if addonID != "" {
		m["addonId"], m["addonVersion"] = addonID, version
	}
	if installError != "" {
		m["installError"] = installError
	}
	a := recipe.Must(m)
	r.variants.m[k] = a
	return a
}

// RevisedOn reports whether the server sends the recipe's revision on day.
func (r Recipe) RevisedOn(day int) bool { return r.ReviseDay > 0 && day >= r.ReviseDay }

// AddonVersionOn is the add-on version the study installs on day: a revision bumps it.
func (r Recipe) AddonVersionOn(day int) string {
	if r.RevisedOn(day) {
		return r.AddonVersion + ".1"
	}
	return r.AddonVersion
}

// live reports whether the server sends the recipe on day.
func (r Recipe) live(day int) bool { return day >= r.StartDay && day < r.EndDay }

// Words for study names and preferences: enough for a plausible catalogue.
var (
	prefWords = []string{"search-suggestions", "tls13", "doh", "tracking-protection", "webrender",
		"tab-warming", "lazy-restore", "http2-push", "autoplay", "spectre-timers"}
	prefNames = []string{"browser.search.suggest.enabled", "security.tls.version.max", "network.trr.mode",
		"privacy.trackingprotection.enabled", "gfx.webrender.enabled", "browser.tabs.remote.warmup.enabled",
		"browser.sessionstore.restore_tabs_lazily", "network.http.allow-push", "media.autoplay.enabled",
		"privacy.reduceTimerPrecision"}
	// prefTypes are the preferences' types, and prefValues each type's branch values.
	prefTypes  = []string{"boolean", "integer", "integer", "boolean", "boolean", "boolean", "boolean", "boolean", "boolean", "string"}
	prefValues = map[string][]any{"boolean": {false, true, true}, "integer": {json.Number("3"), json.Number("4"), json.Number("2")},
		"string": {"off", "on", "strict"}}
	addonWords = []string{"pioneer-online-news", "shield-cookie-restrictions", "screenshots-upload",
		"pocket-newtab", "activity-stream-perf", "fx-usage-report"}
	installErrors = []string{"AddonStudies.jsm:123:45 Error", "AddonStudies.jsm:241:9 DownloadError",
		"AddonStudies.jsm:238:21 InstallError", "AddonStudies.jsm:301:13 TypeError"}
)

// newCatalogue draws the server's recipes for a simulation of days days, each built
// from its action's published recipe: the preference studies (every fourth a
// multi-preference-experiment), a second study of the first study's preference (its
// recipe is skipped while that study holds the preference), the add-on studies (every
// other one a branched-addon-study), then a heartbeat survey, a console-log recipe, a
// preference rollout and a recipe of an unknown action. The first study of each kind
// ends half way, so studies end with recipe-not-seen in any simulation of two days or
// more; the second preference study pauses its enrollment half way.
func newCatalogue(rng *rand.Rand, cfg Config) []Recipe {
	var out []Recipe
	id := domain.RecipeID(450)
	next := func() domain.RecipeID { id++; return id }
	schedule := func(i int) (int, int) {
		if i == 0 {
			return 0, max(1, cfg.Days/2)
		}
		start := rng.IntN(max(1, cfg.Days/2))
		return start, start + max(1, cfg.Days/3) + rng.IntN(cfg.Days+1)
	}
	forever := cfg.Days + 1
	prefStudy := func(i int, pref, prefType string, action string, start, end int) Recipe {
		r := Recipe{ID: next(), Action: action, Object: domain.PreferenceStudy,
			Slug:       fmt.Sprintf("pref-flip-%s-%d", prefWords[i%len(prefWords)], i+1),
			Branches:   branches(rng),
			Preference: pref, HighPopulation: i%3 == 2,
			StartDay: start, EndDay: end, Sample: 0.3 + 0.6*rng.Float64(), Drop: 0.1}
		r.base = prefArguments(r, prefType, i)
		return r
	}
	for i := range cfg.PrefStudies {
		start, end := schedule(i)
		k := i % len(prefNames)
		name := prefNames[k]
		if i >= len(prefNames) {
			name = fmt.Sprintf("%s.%d", name, i/len(prefNames)) // one study per preference
		}
		action := ActionPreference
		if i%4 == 3 {
			action = ActionMultiPreference
		}
		r := prefStudy(i, name, prefTypes[k], action, start, end)
		if i == 1 {
			r.Paused, r.PausedFrom = true, max(1, cfg.Days/2)
		}
		out = append(out, r)
	}
	if cfg.PrefStudies > 0 {
		// A second study of the first study's preference, live all along.
		r := prefStudy(cfg.PrefStudies, prefNames[0], prefTypes[0], ActionPreference, 0, forever)
		r.Slug = fmt.Sprintf("pref-flip-%s-followup-%d", prefWords[0], cfg.PrefStudies+1)
		r.base["slug"] = r.Slug
		out = append(out, r)
	}
	for i := range cfg.AddonStudies {
		start, end := schedule(i)
		slug := fmt.Sprintf("%s-%d", addonWords[i%len(addonWords)], i+1)
		r := Recipe{ID: next(), Action: ActionAddon, Object: domain.AddonStudy, Slug: slug,
			AddonID: slug + "@shield.mozilla.org", AddonVersion: fmt.Sprintf("1.0.%d", 1+rng.IntN(9)),
			StartDay: start, EndDay: end, Sample: 0.3 + 0.6*rng.Float64(), Drop: 0.1}
		if i%2 == 1 {
			r.Action = ActionBranchedAddon
			r.Branches = []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "treatment-a", Ratio: 25}, {Slug: "treatment-b", Ratio: 25}}
			if len(cfg.Versions) > 0 && cfg.Days >= 3 {
				r.ReviseDay = max(start+1, cfg.Days*2/3)
			}
		}
		r.base = addonArguments(r, len(cfg.Versions) > 0)
		out = append(out, r)
	}
	others := []Recipe{
		{ID: next(), Action: ActionHeartbeat, EndDay: forever, Sample: 0.2},
		{ID: next(), Action: ActionConsoleLog, EndDay: forever, Sample: 1},
		{ID: next(), Action: ActionRollout, EndDay: forever, Sample: 0.5},
		{ID: next(), Action: actionUnknown, StartDay: cfg.Days / 2, EndDay: forever, Sample: 0.05},
	}
	if len(cfg.Versions) > 0 && cfg.Days >= 3 {
		// A mixed fleet's server rolls the rollout back two thirds in: the rollback
		// recipe replaces the rollout's, as Normandy's server published them.
		rollbackDay := cfg.Days * 2 / 3
		others[2].EndDay = rollbackDay
		others = append(others, Recipe{ID: next(), Action: ActionRollback, StartDay: rollbackDay, EndDay: forever, Sample: 0.5})
	}
	for _, r := range others {
		r.base = template(r.Action)
		out = append(out, r)
	}
	for i := range out {
		out[i].Arguments = recipe.Must(out[i].base)
		out[i].variants = &variants{m: map[variantKey]recipe.Arguments{}}
	}
	return out
}

// prefArguments builds a preference study's arguments from the published recipe of its
// action: the preference-experiment's single preference, or one preference per branch
// of a multi-preference-experiment.
func prefArguments(r Recipe, prefType string, i int) map[string]any {
	m := template(r.Action)
	m["slug"] = r.Slug
	m["isHighPopulation"] = r.HighPopulation
	branchType := "default"
	if i%2 == 1 {
		branchType = "user"
	}
	var bs []any
	for j, b := range r.Branches {
		value := prefValues[prefType][j%3]
		branch := map[string]any{"slug": b.Slug, "ratio": b.Ratio}
		if r.Action == ActionMultiPreference {
			branch["preferences"] = map[string]any{r.Preference: map[string]any{
				"preferenceType": prefType, "preferenceBranchType": branchType, "preferenceValue": value}}
		} else {
			branch["value"] = value
		}
		bs = append(bs, branch)
	}
	m["branches"] = bs
	if r.Action == ActionPreference {
		m["preferenceName"], m["preferenceType"], m["preferenceBranchType"] = r.Preference, prefType, branchType
	} else {
		m["userFacingName"] = "Preference study " + r.Slug
	}
	return m
}

// addonArguments builds an add-on study's arguments from the published recipe of its
// action: the 2018 opt-out-study (name, description, addonUrl) or a branched-addon-study
// (slug, user-facing texts, branches with their extension ids).
//
// In a mixed fleet (later) the branched study's control branch installs no add-on
// (extensionApiId null), as later Firefox allowed.
func addonArguments(r Recipe, later bool) map[string]any {
	m := template(r.Action)
	if r.Action == ActionAddon {
		m["name"] = r.Slug
		m["description"] = "Simulated add-on study " + r.Slug
		m["addonUrl"] = fmt.Sprintf("https://example.org/extensions/%s-%s-signed.xpi", r.AddonID, r.AddonVersion)
		return m
	}
	m["slug"] = r.Slug
	m["userFacingName"] = "Add-on study " + r.Slug
	var bs []any
	for j, b := range r.Branches {
		var api any = 400 + int(r.ID)*4 + j
		if later && b.Slug == "control" {
			api = nil
		}
		bs = append(bs, map[string]any{"slug": b.Slug, "ratio": b.Ratio, "extensionApiId": api})
	}
	m["branches"] = bs
	return m
}

// branches draws two or three branches with the usual ratios.
func branches(rng *rand.Rand) []recipe.Ratio {
	if rng.IntN(2) == 0 {
		return []recipe.Ratio{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}
	}
	return []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "treatment-a", Ratio: 25}, {Slug: "treatment-b", Ratio: 25}}
}

// PublishedJSON returns the bytes of action's published recipe fixture, as stored.
func PublishedJSON(action string) ([]byte, error) {
	b, err := publishedFS.ReadFile("testdata/recipes/" + action + ".json")
	if err != nil {
		return nil, fmt.Errorf("simulate: no published recipe of action %q: %w", action, err)
	}
	return b, nil
}

// PublishedActions lists the actions with a published recipe fixture.
func PublishedActions() []string {
	entries, _ := publishedFS.ReadDir("testdata/recipes")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out
}
