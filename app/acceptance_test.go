package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// TestAcceptanceRealRecipeFleet runs a multi-day fleet whose recipes are built from the
// recipes Normandy's server published (preference-experiment, multi-preference-
// experiment, opt-out-study, branched-addon-study, show-heartbeat, console-log,
// preference-rollout and an action studyd does not know; a study that pauses its
// enrollment; a second study of a preference another study holds) through the handler
// and store, exports the log in the Telemetry shape, and compares it event by event with
// the events a reference model of the 2018 Firefox actions expects. The reference reads
// the commands and the recipes' raw arguments itself: it shares nothing with studyd's
// decision, projection or export code (its ratio sampling included).
func TestAcceptanceRealRecipeFleet(t *testing.T) {
	t.Parallel()
	fleet, err := simulate.New(simulate.Config{Clients: 150, Days: 8, Seed: 14})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ref := newReference()
	var commands int
	err = fleet.Each(func(cmd domain.Command) error {
		commands++
		if _, err := h.Handle(ctx, cmd, app.Source{}); err != nil {
			return fmt.Errorf("command %s rejected: %w", cmd.CommandID, err)
		}
		return ref.apply(cmd)
	})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	x, err := audit.NewExporter(&out, audit.FormatTelemetry, audit.Selection{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Read(ctx, eventstore.Query{}, x.Commit); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	var got []telemetry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e telemetry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}

	// Events of one command share its timestamp; their order within it is studyd's
	// canonical order, which the reference does not claim to know. Compare sorted.
	sortTelemetry(got)
	want := ref.events
	sortTelemetry(want)
	if len(got) != len(want) {
		t.Errorf("exported %d events, the reference expects %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if diff := cmp.Diff(want[i], got[i]); diff != "" {
			t.Fatalf("event %d of %d differs (-want +got):\n%s", i, len(want), diff)
		}
	}

	// The fleet must have exercised what it is for.
	t.Logf("%d commands, %d telemetry events; reference: %d paused skips, %d conflict skips, %d branched add-on enrollments",
		commands, len(got), ref.pausedSkips, ref.conflictSkips, ref.branchedEnrolls)
	if ref.pausedSkips == 0 || ref.conflictSkips == 0 || ref.branchedEnrolls == 0 || ref.multiPrefEnrolls == 0 {
		t.Errorf("the fleet exercised %d paused skips, %d conflict skips, %d branched add-on and %d multi-preference enrollments; want each",
			ref.pausedSkips, ref.conflictSkips, ref.branchedEnrolls, ref.multiPrefEnrolls)
	}
}

// telemetry is one exported event, read back as plain JSON.
type telemetry struct {
	ClientID  string            `json:"client_id"`
	Timestamp int64             `json:"timestamp"`
	Category  string            `json:"category"`
	Method    string            `json:"method"`
	Object    string            `json:"object"`
	Value     string            `json:"value"`
	Extra     map[string]string `json:"extra"`
}

func (e telemetry) key() string {
	b, _ := json.Marshal(e) // maps marshal with sorted keys
	return fmt.Sprintf("%s %020d %s", e.ClientID, e.Timestamp, b)
}

func sortTelemetry(es []telemetry) {
	slices.SortStableFunc(es, func(a, b telemetry) int {
		ka, kb := a.key(), b.key()
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
}

// reference is a model of the 2018 Firefox Normandy client, written from its action code
// (mozilla/normandy client/actions/preference-experiment and opt-out-study, and the
// branched add-on study that followed) and the 2018 data-collection document.
type reference struct {
	clients map[domain.ClientID]*refClient
	events  []telemetry

	pausedSkips, conflictSkips, branchedEnrolls, multiPrefEnrolls int
}

type refClient struct {
	optedOut bool
	prefs    map[string]*refStudy // by slug
	addons   map[uint64]*refStudy // by recipe id
}

type refStudy struct {
	active, failed bool
	action         string
	slug, branch   string
	pref           string
	addonID, ver   string
}

func newReference() *reference { return &reference{clients: map[domain.ClientID]*refClient{}} }

var (
	refPrefActions  = map[string]bool{"preference-experiment": true, "multi-preference-experiment": true}
	refAddonActions = map[string]bool{"opt-out-study": true, "addon-study": true, "branched-addon-study": true}
)

func (r *reference) emit(cmd domain.Command, method, object, value string, extra map[string]string) {
	r.events = append(r.events, telemetry{ClientID: string(cmd.ClientID), Timestamp: cmd.At.UnixMilli(),
		Category: "normandy", Method: method, Object: object, Value: value, Extra: extra})
}

func (r *reference) apply(cmd domain.Command) error {
	c := r.clients[cmd.ClientID]
	if c == nil {
		c = &refClient{prefs: map[string]*refStudy{}, addons: map[uint64]*refStudy{}}
		r.clients[cmd.ClientID] = c
	}
	switch cmd.Type {
	case domain.CommandRecipeRun:
		return r.run(c, cmd)
	case domain.CommandOptOut:
		if cmd.StudiesEnabled {
			c.optedOut = false
			return nil
		}
		if c.optedOut {
			return nil
		}
		c.optedOut = true
		for _, id := range sortedIDs(c.addons) {
			if s := c.addons[id]; s.active {
				r.endAddon(cmd, s, "general-opt-out")
			}
		}
	case domain.CommandStudyRemoved:
		id, _ := strconv.ParseUint(cmd.Study.Key, 10, 64)
		if s := c.addons[id]; s != nil && s.active {
			r.endAddon(cmd, s, "individual-opt-out")
		}
	case domain.CommandAddonUninstalled:
		reason := "uninstalled"
		if cmd.Sideload {
			reason = "uninstalled-sideload"
		}
		for _, id := range sortedIDs(c.addons) {
			if s := c.addons[id]; s.active && s.addonID == cmd.AddonID {
				r.endAddon(cmd, s, reason)
			}
		}
	case domain.CommandPrefChanged:
		reason := "user-preference-changed"
		if cmd.Sideload {
			reason = "user-preference-changed-sideload"
		}
		for _, s := range c.prefs {
			if s.active && s.pref == cmd.Preference {
				r.endPref(cmd, s, reason, false)
			}
		}
	case domain.CommandUnenroll:
		reason := string(cmd.Reason)
		if reason == "" {
			reason = "unknown"
		}
		if cmd.Study.Object == domain.PreferenceStudy {
			if s := c.prefs[cmd.Study.Key]; s != nil && s.active {
				r.endPref(cmd, s, reason, reason != "user-preference-changed" && reason != "user-preference-changed-sideload")
				return nil
			}
		} else {
			id, _ := strconv.ParseUint(cmd.Study.Key, 10, 64)
			if s := c.addons[id]; s != nil && s.active {
				r.endAddon(cmd, s, reason)
				return nil
			}
		}
		return fmt.Errorf("reference: unenroll of %s, which is not active", cmd.Study)
	}
	return nil
}

func (r *reference) endPref(cmd domain.Command, s *refStudy, reason string, reset bool) {
	s.active = false
	r.emit(cmd, "unenroll", "preference_study", s.slug, map[string]string{"reason": reason, "didResetValue": strconv.FormatBool(reset)})
}

func (r *reference) endAddon(cmd domain.Command, s *refStudy, reason string) {
	s.active = false
	extra := map[string]string{"reason": reason, "addonId": s.addonID, "addonVersion": s.ver}
	if s.branch != "" {
		extra["branch"] = s.branch
	}
	r.emit(cmd, "unenroll", "addon_study", s.slug, extra)
}

// refArgs is a recipe's raw arguments, read with encoding/json alone.
type refArgs map[string]any

func (a refArgs) str(k string) string { s, _ := a[k].(string); return s }
func (a refArgs) flag(k string) bool  { b, _ := a[k].(bool); return b }
func (a refArgs) branches() []map[string]any {
	var out []map[string]any
	list, _ := a["branches"].([]any)
	for _, b := range list {
		out = append(out, b.(map[string]any))
	}
	return out
}

func (r *reference) run(c *refClient, cmd domain.Command) error {
	if cmd.RunnerStatus != domain.RunnerSuccess {
		return nil // a failed fetch executes and finalizes nothing
	}
	// Opted out, the 2018 study actions returned before marking anything seen, and their
	// post-execution hooks still ran.
	seenPrefs, seenAddons := map[string]bool{}, map[uint64]bool{}
	for _, rec := range cmd.Recipes {
		if c.optedOut || rec.Status != domain.RecipeSuccess && rec.Status != domain.RecipeExecutionError {
			continue
		}
		var a refArgs
		if rec.Arguments != "" {
			if err := json.Unmarshal([]byte(rec.Arguments), &a); err != nil {
				return fmt.Errorf("reference: recipe %d arguments: %w", rec.ID, err)
			}
		}
		switch {
		case refPrefActions[rec.Action]:
			r.prefRecipe(c, cmd, rec, a, seenPrefs)
		case refAddonActions[rec.Action]:
			r.addonRecipe(c, cmd, rec, a, seenAddons)
		}
	}
	for _, act := range cmd.Actions {
		if act.Status != domain.ActionSuccess {
			continue
		}
		for slug, s := range c.prefs {
			if s.active && s.action == act.Name && !seenPrefs[slug] {
				r.endPref(cmd, s, "recipe-not-seen", true)
			}
		}
		for _, id := range sortedIDs(c.addons) {
			if s := c.addons[id]; s.active && s.action == act.Name && !seenAddons[id] {
				r.endAddon(cmd, s, "recipe-not-seen")
			}
		}
	}
	return nil
}

// prefRecipe is the 2018 preference-experiment action's execute.
func (r *reference) prefRecipe(c *refClient, cmd domain.Command, rec domain.RecipeReport, a refArgs, seen map[string]bool) {
	slug := a.str("slug")
	seen[slug] = true
	if _, has := c.prefs[slug]; has {
		return // enrolled: lastSeen moves; ended: nothing
	}
	if rec.Status != domain.RecipeSuccess {
		return // the action threw before enrolling
	}
	branches := a.branches()
	prefOf := func(b map[string]any) string {
		if p := a.str("preferenceName"); p != "" {
			return p
		}
		for name := range b["preferences"].(map[string]any) {
			return name
		}
		return ""
	}
	for _, b := range branches {
		for _, other := range c.prefs {
			if other.active && other.pref == prefOf(b) {
				r.conflictSkips++
				return // "another active experiment is already using the preference": warn, return
			}
		}
	}
	if a.flag("isEnrollmentPaused") {
		r.pausedSkips++
		return
	}
	b := branches[refSample(string(cmd.ClientID)+"-"+slug+"-branch", branches)]
	s := &refStudy{active: true, action: rec.Action, slug: slug, branch: b["slug"].(string), pref: prefOf(b)}
	c.prefs[slug] = s
	if rec.Action == "multi-preference-experiment" {
		r.multiPrefEnrolls++
	}
	experimentType := "exp"
	if a.flag("isHighPopulation") {
		experimentType = "exp-highpop"
	}
	r.emit(cmd, "enroll", "preference_study", slug, map[string]string{"branch": s.branch, "experimentType": experimentType})
}

// addonRecipe is the opt-out-study (and branched-addon-study) action's execute, with the
// install outcome the client reported.
func (r *reference) addonRecipe(c *refClient, cmd domain.Command, rec domain.RecipeReport, a refArgs, seen map[uint64]bool) {
	id := uint64(rec.ID)
	seen[id] = true
	if s := c.addons[id]; s != nil && !s.failed {
		return
	}
	if a.flag("isEnrollmentPaused") {
		r.pausedSkips++
		return
	}
	slug := a.str("slug")
	if slug == "" {
		slug = a.str("name")
	}
	switch {
	case rec.Status == domain.RecipeSuccess && a.str("addonId") != "":
		s := &refStudy{active: true, action: rec.Action, slug: slug, addonID: a.str("addonId"), ver: a.str("addonVersion")}
		extra := map[string]string{"addonId": s.addonID, "addonVersion": s.ver}
		if branches := a.branches(); len(branches) > 0 {
			s.branch = branches[refSample(string(cmd.ClientID)+"-"+slug+"-addon-branch", branches)]["slug"].(string)
			extra["branch"] = s.branch
			r.branchedEnrolls++
		}
		c.addons[id] = s
		r.emit(cmd, "enroll", "addon_study", slug, extra)
	case rec.Status == domain.RecipeExecutionError && a.str("installError") != "":
		c.addons[id] = &refStudy{failed: true, slug: slug}
		r.emit(cmd, "enrollFailed", "addon_study", slug, map[string]string{"reason": a.str("installError")})
	}
}

// refSample is Firefox's Sampling.ratioSample, written from its source: the first 12
// hex digits of sha256(JSON.stringify(input)) compared as strings with each cumulative
// fraction of the total, scaled to 2^48−1 in doubles.
func refSample(input string, branches []map[string]any) int {
	ratios := make([]float64, len(branches))
	var total float64
	for i, b := range branches {
		f, _ := b["ratio"].(float64)
		ratios[i] = f
		total += f
	}
	quoted, _ := json.Marshal(input)
	sum := sha256.Sum256(quoted)
	hash := hex.EncodeToString(sum[:])[:12]
	var running float64
	for i := 0; i < len(ratios)-1; i++ {
		running += ratios[i]
		key := fmt.Sprintf("%012x", uint64(math.Floor(running/total*(math.Pow(2, 48)-1))))
		if hash <= key {
			return i
		}
	}
	return len(ratios) - 1
}

func sortedIDs(m map[uint64]*refStudy) []uint64 {
	out := make([]uint64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
