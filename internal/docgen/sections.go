package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

// ErrMarkers is returned when a README lacks a generated section's markers.
var ErrMarkers = errors.New("docgen: generated section markers missing or out of order")

// Section is one generated section: its marker name and its generator.
type Section struct {
	Name     string
	Generate func() string
}

// Sections are the README's generated sections by marker name, in README order.
var Sections = []Section{
	{Name: "fsm", Generate: fsmSection},
	{Name: "rollout-fsm", Generate: rolloutFSMSection},
	{Name: "events", Generate: eventsSection},
}

// CommandsSections are docs/commands.md's generated sections.
var CommandsSections = []Section{
	{Name: "versions", Generate: versionsSection},
	{Name: "later-events", Generate: laterEventsSection},
}

// Rewrite replaces the body of every generated section of readme, between
// "<!-- BEGIN GENERATED: name -->" and "<!-- END GENERATED: name -->", leaving
// everything outside the markers as it is.
func Rewrite(readme string) (string, error) { return rewrite(readme, Sections) }

// RewriteCommands is Rewrite for docs/commands.md.
func RewriteCommands(doc string) (string, error) { return rewrite(doc, CommandsSections) }

func rewrite(readme string, sections []Section) (string, error) {
	for _, s := range sections {
		begin := "<!-- BEGIN GENERATED: " + s.Name + " -->"
		end := "<!-- END GENERATED: " + s.Name + " -->"
		i := strings.Index(readme, begin)
		j := strings.Index(readme, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("%w: section %q needs %s … %s", ErrMarkers, s.Name, begin, end)
		}
		readme = readme[:i+len(begin)] + "\n" + s.Generate() + readme[j:]
	}
	return readme, nil
}

// fsmSection is the transition table as a Mermaid diagram.
func fsmSection() string {
	var b strings.Builder
	b.WriteString("```mermaid\n")
	b.WriteString(fsm.Mermaid())
	b.WriteString("```\n\n")
	fmt.Fprintf(&b, "Transition table version `%s` (`fsm.Version()`, recorded with every commit).\n", fsm.Version())
	return b.String()
}

// rolloutFSMSection is the rollout transition table as a Mermaid diagram.
func rolloutFSMSection() string {
	return "```mermaid\n" + fsm.RolloutMermaid() + "```\n"
}

// versionsSection is the table of versioned rules: rule × Firefox versions, with the
// Normandy client file and era each comes from.
func versionsSection() string {
	var b strings.Builder
	b.WriteString("| rule | what the client did | Firefox | era | source (`toolkit/components/normandy/…`) | boundary |\n|---|---|---|---|---|---|\n")
	for _, r := range domain.Rules {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.ID, r.Description, r.Versions(), r.Era, r.Source, r.Boundary)
	}
	fmt.Fprintf(&b, "\nEras by first release: E2018 = Firefox %d, E2019–20 = %d, E2020–22 = %d, current = %d. "+
		"\"unversioned\" is a command without `firefox_version`: it follows the seed (the rules whose range starts unversioned).\n",
		domain.Era2018, domain.Era2019, domain.Era2020, domain.EraCurrent)
	b.WriteString("\nStatuses and reasons that not every version sent, and the rule that had them:\n\n| status or reason | for | rule |\n|---|---|---|\n")
	for _, set := range [][]domain.UptakeStatus{domain.RunnerStatuses, domain.ActionStatuses, domain.RecipeStatuses, domain.LaterRecipeStatuses} {
		for _, s := range set {
			if r, ok := s.StatusRule(); ok {
				fmt.Fprintf(&b, "| `%s` (`%s`) | uptake | `%s` (%s) |\n", s, s.Label(), r, domain.RuleFor(r).Versions())
			}
		}
	}
	for _, o := range domain.AllObjects {
		for _, reason := range domain.AllReasons(o) {
			if r, ok := domain.ReasonRule(o, reason); ok {
				fmt.Fprintf(&b, "| `%s` | `%s` | `%s` (%s) |\n", reason, o, r, domain.RuleFor(r).Versions())
			}
		}
	}
	return b.String()
}

// laterEvents are example events of later Firefox, each rendered in the Telemetry
// shape of the versions at the edges of its rules.
var laterEvents = []struct {
	what string
	e    domain.Event
}{
	{"unenroll of a preference study", domain.Event{Type: domain.EventUnenrolled, Object: domain.PreferenceStudy, Reason: string(domain.ReasonUserPreferenceChanged), Branch: "b", Preference: "p", EnrollmentID: "id"}},
	{"enroll of a preference study", domain.Event{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Branch: "b", ExperimentType: "exp", EnrollmentID: "id"}},
	{"enrollFailed of a preference study (invalid-branch)", domain.Event{Type: domain.EventEnrollFailed, Object: domain.PreferenceStudy, Reason: "invalid-branch", PreferenceBranchType: "b"}},
	{"unenrollFailed of a preference study", domain.Event{Type: domain.EventUnenrollFailed, Object: domain.PreferenceStudy, Reason: "already-unenrolled", OriginalReason: "individual-opt-out", EnrollmentID: "id"}},
	{"expPrefChanged", domain.Event{Type: domain.EventExpPrefChanged, Object: domain.PreferenceStudy, Preference: "p", Reason: "observer", EnrollmentID: "id"}},
	{"enroll of a branched add-on study", domain.Event{Type: domain.EventEnrolled, Object: domain.AddonStudy, Branch: "b", EnrollmentID: "id"}},
	{"update of a branched add-on study", domain.Event{Type: domain.EventUpdated, Object: domain.AddonStudy, Branch: "b", AddonID: "a", AddonVersion: "2", EnrollmentID: "id"}},
	{"updateFailed of a branched add-on study", domain.Event{Type: domain.EventUpdateFailed, Object: domain.AddonStudy, Branch: "b", Reason: "no-downgrade", EnrollmentID: "id"}},
	{"enroll of a preference rollout", domain.Event{Type: domain.EventEnrolled, Object: domain.PreferenceRollout, EnrollmentID: "id"}},
	{"enrollFailed of a preference rollout", domain.Event{Type: domain.EventEnrollFailed, Object: domain.PreferenceRollout, Reason: "conflict", Preference: "p"}},
	{"update of a preference rollout", domain.Event{Type: domain.EventUpdated, Object: domain.PreferenceRollout, From: domain.StateGraduated, EnrollmentID: "id"}},
	{"graduate of a preference rollout", domain.Event{Type: domain.EventGraduated, Object: domain.PreferenceRollout, Reason: "all-prefs-match", EnrollmentID: "id"}},
	{"unenroll of a preference rollback", domain.Event{Type: domain.EventUnenrolled, Object: domain.PreferenceRollback, Reason: "rollback", EnrollmentID: "id"}},
	{"unenrollFailed of a preference rollback", domain.Event{Type: domain.EventUnenrollFailed, Object: domain.PreferenceRollback, Reason: "graduated", EnrollmentID: "id"}},
}

// laterEventsSection renders each later event's extra keys as the Firefox versions at
// the rules' edges sent them (the export of `studyctl audit --format telemetry`).
func laterEventsSection() string {
	versions := []domain.FirefoxVersion{0, domain.Era2018, domain.Era2019, domain.Era2020, domain.EraCurrent}
	var b strings.Builder
	b.WriteString("| event | method | object |")
	for _, v := range versions {
		fmt.Fprintf(&b, " Firefox %s |", v)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(versions)) + "\n")
	for _, le := range laterEvents {
		fmt.Fprintf(&b, "| %s | `%s` | `%s` |", le.what, le.e.Type.Method(), le.e.Object)
		for _, v := range versions {
			e := le.e
			e.FirefoxVersion = v
			te, _ := e.Telemetry("c", time.Unix(0, 0))
			keys := make([]string, 0, len(te.Extra))
			for k := range te.Extra {
				keys = append(keys, "`"+k+"`")
			}
			slices.Sort(keys)
			cell := strings.Join(keys, ", ")
			if cell == "" {
				cell = "(none)"
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nA cell is the extras an event has in the shape of that version; whether that version sent the event at all is the rule's (above).\n")
	return b.String()
}

// seedEvents are the (event, object) pairs the seed's Enrollment section defines:
// enrollFailed exists only for add-on studies there.
var seedEvents = []struct {
	Type   domain.EventType
	Object domain.Object
}{
	{domain.EventEnrolled, domain.PreferenceStudy},
	{domain.EventEnrolled, domain.AddonStudy},
	{domain.EventEnrollFailed, domain.AddonStudy},
	{domain.EventUnenrolled, domain.PreferenceStudy},
	{domain.EventUnenrolled, domain.AddonStudy},
}

// eventsSection is the event catalogue: the enrollment events with their telemetry
// shape, the events without telemetry, and the uptake statuses.
func eventsSection() string {
	var b strings.Builder
	b.WriteString("Enrollment events, recorded in the log and exported in the Telemetry shape " +
		"(category `" + domain.TelemetryCategory + "`, value = the study slug, extras truncated to " +
		fmt.Sprint(domain.MaxTelemetryString) + " bytes):\n\n")
	b.WriteString("| event | method | object | extra keys | reasons |\n|---|---|---|---|---|\n")
	for _, se := range seedEvents {
		plain, _ := domain.Event{Type: se.Type, Object: se.Object}.Telemetry("c", time.Unix(0, 0))
		// A branched add-on study's events also carry its branch.
		te, _ := domain.Event{Type: se.Type, Object: se.Object, Branch: "b"}.Telemetry("c", time.Unix(0, 0))
		keys := make([]string, 0, len(te.Extra))
		for k := range te.Extra {
			if _, always := plain.Extra[k]; always {
				keys = append(keys, "`"+k+"`")
			} else {
				keys = append(keys, "`"+k+"` (branched studies)")
			}
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s | %s |\n", se.Type, te.Method, te.Object, strings.Join(keys, ", "), reasons(se.Type, se.Object))
	}
	b.WriteString("\nEvents without telemetry:\n\n| event | meaning |\n|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | one uptake status of a run, under its source key (below); a recipe's also carries its `action`, its whole `arguments` as the client ran them, and why studyd `skipped` it, if it did |\n", domain.EventUptakeReported)
	fmt.Fprintf(&b, "| `%s` | the studies opt-out pref changed (`studies_enabled`) |\n", domain.EventStudiesOptOutChanged)
	b.WriteString("\nUptake statuses (tallies count the status; the label is what Firefox sent; the last four only later Firefox sent, " +
		"see the versioned rules in docs/commands.md):\n\n")
	b.WriteString("| status | source key | wire label |\n|---|---|---|\n")
	for _, g := range []struct {
		source   string
		statuses []domain.UptakeStatus
	}{
		{domain.SourceRunner, domain.RunnerStatuses},
		{domain.ActionSource("<action name>"), domain.ActionStatuses},
		{domain.RecipeSource(0)[:len(domain.RecipeSource(0))-1] + "<recipe id>", domain.RecipeStatuses},
		{domain.RecipeSource(0)[:len(domain.RecipeSource(0))-1] + "<recipe id>", domain.LaterRecipeStatuses},
	} {
		for _, s := range g.statuses {
			fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", s, g.source, s.Label())
		}
	}
	return b.String()
}

// reasons lists the reasons an enrollment event may carry for object o.
func reasons(t domain.EventType, o domain.Object) string {
	switch t {
	case domain.EventUnenrolled:
		var out []string
		for _, r := range domain.Reasons(o) {
			out = append(out, "`"+string(r)+"`")
		}
		return strings.Join(out, ", ")
	case domain.EventEnrollFailed:
		return fmt.Sprintf("free-form: the client's `file:line:col ErrorName` (≤ %d bytes accepted)", domain.MaxEnrollFailedReason)
	}
	return "–"
}
