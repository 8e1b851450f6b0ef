package simulate

import (
	"fmt"
	"math/rand/v2"

	"github.com/studyd/studyd/domain"
)

// The actions of the simulated 2018 runner: every run fetches and reports all of them.
const (
	ActionPreference = "preference-experiment"
	ActionAddon      = "opt-out-study"
	ActionHeartbeat  = "show-heartbeat"
	ActionConsoleLog = "console-log"
	// actionUnknown is named by a recipe the runner has no action for: it is reported
	// RECIPE_INVALID_ACTION and never appears among the actions.
	actionUnknown = "show-survey"
)

// actions are the actions a run reports, in the order the runner ran them.
var actions = []string{ActionPreference, ActionAddon, ActionHeartbeat, ActionConsoleLog}

// Recipe is one recipe of the simulated Normandy server: a study or another action.
type Recipe struct {
	ID     domain.RecipeID
	Action string
	// Object is the study kind, or "" for a recipe that runs no study.
	Object domain.Object
	// Slug is the study's slug (the add-on study's arguments.name, as in 2018).
	Slug           string
	Branches       []domain.Branch
	Preference     string // preference studies
	HighPopulation bool   // preference studies
	AddonID        string // add-on studies
	AddonVersion   string // add-on studies
	// The server sends the recipe on days [StartDay, EndDay); EndDay may lie beyond the
	// simulation, and a study whose recipe stops is ended by its action's finalize.
	StartDay, EndDay int
	// Sample is the fraction of clients whose filter matches; Drop the fraction of
	// those that stop matching on a day during the recipe's life (e.g. after an update).
	Sample, Drop float64
}

// Study returns the study the recipe runs, or false.
func (r Recipe) Study() (domain.StudyRef, bool) {
	return domain.RecipeReport{ID: r.ID, Action: r.Action, Arguments: r.arguments()}.Study()
}

// arguments are the recipe's arguments as the server sends them (without the install
// outcome a client adds).
func (r Recipe) arguments() domain.RecipeArguments {
	switch r.Object {
	case domain.PreferenceStudy:
		return domain.RecipeArguments{Slug: r.Slug, Branches: r.Branches, PreferenceName: r.Preference,
			IsHighPopulation: r.HighPopulation}
	case domain.AddonStudy:
		return domain.RecipeArguments{Name: r.Slug}
	}
	return domain.RecipeArguments{}
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
	addonWords = []string{"pioneer-online-news", "shield-cookie-restrictions", "screenshots-upload",
		"pocket-newtab", "activity-stream-perf", "fx-usage-report"}
	installErrors = []string{"AddonStudies.jsm:123:45 Error", "AddonStudies.jsm:241:9 DownloadError",
		"AddonStudies.jsm:238:21 InstallError", "AddonStudies.jsm:301:13 TypeError"}
)

// newCatalogue draws the server's recipes for a simulation of days days: the studies,
// then a heartbeat survey, a console-log recipe and a recipe of an unknown action.
// The first study of each kind ends half way, so studies end with recipe-not-seen in
// any simulation of two days or more.
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
	for i := range cfg.PrefStudies {
		start, end := schedule(i)
		name := prefNames[i%len(prefNames)]
		if i >= len(prefNames) {
			name = fmt.Sprintf("%s.%d", name, i/len(prefNames)) // one study per preference
		}
		r := Recipe{ID: next(), Action: ActionPreference, Object: domain.PreferenceStudy,
			Slug:       fmt.Sprintf("pref-flip-%s-%d", prefWords[i%len(prefWords)], i+1),
			Branches:   branches(rng),
			Preference: name, HighPopulation: i%3 == 2,
			StartDay: start, EndDay: end, Sample: 0.3 + 0.6*rng.Float64(), Drop: 0.1}
		out = append(out, r)
	}
	for i := range cfg.AddonStudies {
		start, end := schedule(i)
		slug := fmt.Sprintf("%s-%d", addonWords[i%len(addonWords)], i+1)
		r := Recipe{ID: next(), Action: ActionAddon, Object: domain.AddonStudy, Slug: slug,
			AddonID: slug + "@shield.mozilla.org", AddonVersion: fmt.Sprintf("1.0.%d", 1+rng.IntN(9)),
			StartDay: start, EndDay: end, Sample: 0.3 + 0.6*rng.Float64(), Drop: 0.1}
		out = append(out, r)
	}
	forever := cfg.Days + 1
	out = append(out,
		Recipe{ID: next(), Action: ActionHeartbeat, EndDay: forever, Sample: 0.2},
		Recipe{ID: next(), Action: ActionConsoleLog, EndDay: forever, Sample: 1},
		Recipe{ID: next(), Action: actionUnknown, StartDay: cfg.Days / 2, EndDay: forever, Sample: 0.05},
	)
	return out
}

// branches draws two or three branches with the usual ratios.
func branches(rng *rand.Rand) []domain.Branch {
	if rng.IntN(2) == 0 {
		return []domain.Branch{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}
	}
	return []domain.Branch{{Slug: "control", Ratio: 50}, {Slug: "treatment-a", Ratio: 25}, {Slug: "treatment-b", Ratio: 25}}
}
