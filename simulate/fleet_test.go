package simulate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/simulate"
)

// generate returns every command of a fleet, failing the test if generation stops early.
func generate(t *testing.T, cfg simulate.Config) ([]domain.Command, *simulate.Fleet) {
	t.Helper()
	f, err := simulate.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	var out []domain.Command
	if err := f.Each(func(c domain.Command) error { out = append(out, c); return nil }); err != nil {
		t.Fatalf("generate: %v", err)
	}
	return out, f
}

func TestFleetIsDeterministic(t *testing.T) {
	cfg := simulate.Config{Clients: 50, Days: 3, Seed: 7}
	a, _ := generate(t, cfg)
	b, _ := generate(t, cfg)
	if len(a) == 0 {
		t.Fatal("got no commands, want some")
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different commands (-first +second):\n%s", diff)
	}
	cfg.Seed = 8
	c, _ := generate(t, cfg)
	if cmp.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same commands, want different fleets")
	}
}

func TestFleetCommandsAreValidAndOrdered(t *testing.T) {
	cmds, f := generate(t, simulate.Config{Clients: 200, Days: 4, Seed: 1})
	ids := map[string]bool{}
	last := map[domain.ClientID]time.Time{}
	var prev time.Time
	for i, c := range cmds {
		if err := c.Validate(); err != nil {
			t.Fatalf("command %d (%s): Validate: %v", i, c.CommandID, err)
		}
		if ids[c.CommandID] {
			t.Fatalf("command %d: id %s repeats, want unique ids", i, c.CommandID)
		}
		ids[c.CommandID] = true
		if l, ok := last[c.ClientID]; ok && !c.At.After(l) {
			t.Fatalf("command %s at %s, want after the client's previous command at %s", c.CommandID, c.At, l)
		}
		last[c.ClientID] = c.At
		if c.At.Before(prev) {
			t.Fatalf("command %d at %s comes after one at %s, want time order", i, c.At, prev)
		}
		prev = c.At
		if c.Type == domain.CommandStudyRemoved && c.Study.Object != domain.AddonStudy {
			t.Fatalf("command %s removes %s, want only add-on studies removed", c.CommandID, c.Study)
		}
	}
	if got, want := len(last), len(f.Clients()); got > want || got < want*8/10 {
		t.Errorf("got commands from %d clients, want most of the %d", got, want)
	}
	if got, est := len(cmds), f.Count(); got < est*8/10 || got > est*12/10 {
		t.Errorf("got %d commands, Count estimated %d: want within 20%%", got, est)
	}
}

func TestFleetRecipesFitTheirStatus(t *testing.T) {
	cmds, f := generate(t, simulate.Config{Clients: 200, Days: 4, Seed: 2})
	prefOwner := map[string]domain.RecipeID{}
	conflicts := 0
	for _, r := range f.Recipes() {
		if r.Object != domain.PreferenceStudy {
			continue
		}
		if _, ok := prefOwner[r.Preference]; ok {
			conflicts++ // the follow-up study of the first study's preference
		}
		prefOwner[r.Preference] = r.ID
	}
	if conflicts != 1 {
		t.Errorf("got %d preference studies sharing a preference, want exactly the one follow-up study", conflicts)
	}
	for _, c := range cmds {
		for _, r := range c.Recipes {
			if r.Action != simulate.ActionAddon && r.Action != simulate.ActionBranchedAddon {
				continue
			}
			a, err := r.Arguments.Study()
			if err != nil {
				t.Fatalf("%s recipe %d: %v", c.CommandID, r.ID, err)
			}
			if a.InstallError != "" && r.Status != domain.RecipeExecutionError {
				t.Errorf("%s recipe %d: installError with %s, want %s", c.CommandID, r.ID, r.Status, domain.RecipeExecutionError)
			}
			if (a.AddonID != "") != (a.AddonVersion != "") {
				t.Errorf("%s recipe %d: addonId %q, addonVersion %q, want both or neither", c.CommandID, r.ID, a.AddonID, a.AddonVersion)
			}
		}
	}
}

// TestDeciderAcceptsEveryCommand replays a fleet through fsm.Decide, client by client in
// order, as studyd does: a clean simulation must not have a single rejection, and the
// events decided must be the fleet's own tally.
func TestDeciderAcceptsEveryCommand(t *testing.T) {
	cmds, f := generate(t, simulate.Config{Clients: 300, Days: 6, Seed: 3})
	states := map[domain.ClientID]domain.ClientState{}
	var events int
	for _, c := range cmds {
		d, err := fsm.Decide(context.Background(), states[c.ClientID], c)
		if err != nil {
			t.Fatalf("Decide(%s): %v (code %s), want accepted", c.CommandID, err, domain.ClassifyRejection(err))
		}
		states[c.ClientID] = d.State
		events += len(d.Events)
	}
	tally := f.Tally()
	var tallied int
	for _, n := range tally.Events {
		tallied += n
	}
	if events != tallied {
		t.Errorf("replay decided %d events, the fleet tallied %d: want equal", events, tallied)
	}
	var commands int
	for _, n := range tally.Commands {
		commands += n
	}
	if commands != len(cmds) {
		t.Errorf("tally counts %d commands, fleet generated %d: want equal", commands, len(cmds))
	}
}

// TestFleetCoversTheSeed checks that a moderate simulation exercises every command
// type, every uptake status, every enrollment event and every unenroll reason of the seed.
func TestFleetCoversTheSeed(t *testing.T) {
	cmds, f := generate(t, simulate.Config{Clients: 800, Days: 7, Seed: 4})
	tally := f.Tally()
	for _, ct := range domain.CommandTypes {
		if ct == domain.CommandRolloutGraduated {
			continue // the seed has no rollouts (TestMixedVersionFleet covers them)
		}
		if tally.Commands[ct] == 0 {
			t.Errorf("no %s command, want some", ct)
		}
	}
	for _, set := range [][]domain.UptakeStatus{domain.RunnerStatuses, domain.ActionStatuses, domain.RecipeStatuses} {
		for _, s := range set {
			if tally.Uptake[s] == 0 {
				t.Errorf("no uptake status %s, want some", s)
			}
		}
	}
	for _, et := range domain.EventTypes[:5] { // the seed's events; later ones: TestMixedVersionFleet
		if tally.Events[et] == 0 {
			t.Errorf("no %s event, want some", et)
		}
	}
	reasons := tally.Reasons()
	for _, o := range []domain.Object{domain.PreferenceStudy, domain.AddonStudy} {
		for _, r := range domain.Reasons(o) {
			if reasons[r] == 0 {
				t.Errorf("no unenroll with reason %s, want some", r)
			}
		}
	}
	sideloads := map[domain.CommandType]int{}
	highpop := 0
	for _, c := range cmds {
		if c.Sideload {
			sideloads[c.Type]++
		}
		for _, r := range c.Recipes {
			if a, _ := r.Arguments.Study(); a.IsHighPopulation {
				highpop++
			}
		}
	}
	for _, ct := range []domain.CommandType{domain.CommandAddonUninstalled, domain.CommandPrefChanged} {
		if sideloads[ct] == 0 {
			t.Errorf("no sideloaded %s, want some", ct)
		}
	}
	if highpop == 0 {
		t.Error("no isHighPopulation recipe reported, want some")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  simulate.Config
		ok   bool
	}{
		{"minimal", simulate.Config{Clients: 1, Days: 1}, true},
		{"no clients", simulate.Config{Days: 1}, false},
		{"no days", simulate.Config{Clients: 1}, false},
		{"negative studies", simulate.Config{Clients: 1, Days: 1, PrefStudies: -1}, false},
		{"online above 1", simulate.Config{Clients: 1, Days: 1, Online: 1.5}, false},
		{"hourly runs", simulate.Config{Clients: 1, Days: 1, RunsPerDay: 24}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%t", err, tt.ok)
			}
			if err != nil && !errors.Is(err, simulate.ErrConfig) {
				t.Errorf("Validate() = %v, want it to wrap ErrConfig", err)
			}
			if _, err := simulate.New(tt.cfg); (err == nil) != tt.ok {
				t.Errorf("New() = %v, want ok=%t", err, tt.ok)
			}
		})
	}
}

// TestMixedVersionFleet simulates a fleet of unversioned, 2018, E2019–20, E2020–22 and
// current clients: every command is accepted by the decider and carries its client's
// version; each client reports only what its version sent; and the fleet exercises the
// later rules (suitabilities, the deadline, preference-study stop failures and
// overrides, branched add-on updates and branch removal, rollouts) next to the 2018 ones.
func TestMixedVersionFleet(t *testing.T) {
	cfg := simulate.Config{Clients: 250, Days: 9, Seed: 5, Versions: simulate.MixedFleet}
	cmds, f := generate(t, cfg)
	versionOf := map[domain.ClientID]domain.FirefoxVersion{}
	for i, id := range f.Clients() {
		versionOf[id] = f.Versions()[i]
	}
	perVersion := map[domain.FirefoxVersion]int{}
	didntMatch := map[domain.FirefoxVersion]int{}
	for _, c := range cmds {
		v := versionOf[c.ClientID]
		if c.Version() != v {
			t.Fatalf("command %s says Firefox %q, its client runs %s", c.CommandID, c.FirefoxVersion, v)
		}
		perVersion[v]++
		if c.RunnerStatus.SentBy(v) != nil {
			t.Fatalf("command %s: Firefox %s reports %s", c.CommandID, v, c.RunnerStatus)
		}
		for _, a := range c.Actions {
			if a.Status.SentBy(v) != nil {
				t.Fatalf("command %s: Firefox %s reports %s", c.CommandID, v, a.Status)
			}
		}
		for _, r := range c.Recipes {
			if r.Status == domain.RecipeDidntMatchFilter {
				didntMatch[v]++
			}
		}
	}
	for _, share := range simulate.MixedFleet {
		if perVersion[share.Version] == 0 {
			t.Errorf("no command from Firefox %s, want some", share.Version)
		}
	}
	if didntMatch[0] != 0 || didntMatch[60] != 0 || didntMatch[70] == 0 || didntMatch[100] == 0 {
		t.Errorf("RECIPE_DIDNT_MATCH_FILTER by version: %v, want none from unversioned and Firefox 60, some from 70 and 100", didntMatch)
	}
	tally := f.Tally()
	for _, et := range domain.EventTypes {
		if tally.Events[et] == 0 {
			t.Errorf("no %s event, want some", et)
		}
	}
	if tally.Commands[domain.CommandRolloutGraduated] == 0 {
		t.Errorf("no rollout_graduated command, want some")
	}
	reasons := tally.Reasons()
	for _, r := range []domain.Reason{domain.ReasonRecipeNotSeen, domain.ReasonFilterMismatch, domain.ReasonBranchRemoved,
		domain.ReasonUserPreferenceChanged, domain.ReasonGeneralOptOut, domain.ReasonRollback} {
		if reasons[r] == 0 {
			t.Errorf("no unenroll with reason %s, want some (got %v)", r, reasons)
		}
	}
	// The same seed and mix gives the same fleet.
	again, _ := generate(t, cfg)
	if !cmp.Equal(cmds, again) {
		t.Errorf("same config, different commands: a mixed fleet must be deterministic")
	}
}
