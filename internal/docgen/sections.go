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

// Sections are the README's generated sections by marker name, in README order.
var Sections = []struct {
	Name     string
	Generate func() string
}{
	{Name: "fsm", Generate: fsmSection},
	{Name: "events", Generate: eventsSection},
}

// Rewrite replaces the body of every generated section of readme, between
// "<!-- BEGIN GENERATED: name -->" and "<!-- END GENERATED: name -->", leaving
// everything outside the markers as it is.
func Rewrite(readme string) (string, error) {
	for _, s := range Sections {
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
	b.WriteString("\nUptake statuses (tallies count the status; the label is what Firefox sent):\n\n")
	b.WriteString("| status | source key | wire label |\n|---|---|---|\n")
	for _, g := range []struct {
		source   string
		statuses []domain.UptakeStatus
	}{
		{domain.SourceRunner, domain.RunnerStatuses},
		{domain.ActionSource("<action name>"), domain.ActionStatuses},
		{domain.RecipeSource(0)[:len(domain.RecipeSource(0))-1] + "<recipe id>", domain.RecipeStatuses},
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
