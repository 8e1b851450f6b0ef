package client

import (
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// TestKeyPatternsSelectTheirKeys: each pattern the study page reads by matches the
// keys it means and no others (a NATS subject match: tokens, "*" one, ">" the rest).
func TestKeyPatternsSelectTheirKeys(t *testing.T) {
	t.Parallel()
	h := time.Date(2018, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	d := time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	ref := domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref.with dots"}
	other := domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref"}
	tests := []struct {
		name    string
		pattern string
		match   []string
		miss    []string
	}{
		{name: "one recipe by hour", pattern: UptakeSourcePattern(projections.PeriodHour, domain.RecipeSource(42)),
			match: []string{UptakeKey(projections.UptakeKey{Source: domain.RecipeSource(42), Status: domain.RecipeSuccess, Period: projections.PeriodHour, Start: h})},
			miss: []string{UptakeKey(projections.UptakeKey{Source: domain.RecipeSource(42), Status: domain.RecipeSuccess}),
				UptakeKey(projections.UptakeKey{Source: domain.RecipeSource(421), Status: domain.RecipeSuccess, Period: projections.PeriodHour, Start: h})}},
		{name: "one action's totals", pattern: UptakeSourcePattern(projections.PeriodTotal, domain.ActionSource("preference-experiment")),
			match: []string{UptakeKey(projections.UptakeKey{Source: domain.ActionSource("preference-experiment"), Status: domain.ActionSuccess})},
			miss:  []string{UptakeKey(projections.UptakeKey{Source: domain.ActionSource("preference-experiment"), Status: domain.ActionSuccess, Period: projections.PeriodDay, Start: d})}},
		{name: "one study's days", pattern: StudyTimePattern(projections.PeriodDay, &ref),
			match: []string{StudyTimeKey(projections.StudyBucketKey{Study: ref, Period: projections.PeriodDay, Start: d})},
			miss: []string{StudyTimeKey(projections.StudyBucketKey{Study: ref, Period: projections.PeriodHour, Start: h}),
				StudyTimeKey(projections.StudyBucketKey{Study: other, Period: projections.PeriodDay, Start: d})}},
		{name: "every study's hours", pattern: StudyTimePattern(projections.PeriodHour, nil),
			match: []string{StudyTimeKey(projections.StudyBucketKey{Study: ref, Period: projections.PeriodHour, Start: h})},
			miss:  []string{StudyTimeKey(projections.StudyBucketKey{Study: ref, Period: projections.PeriodDay, Start: d})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, k := range tt.match {
				if !subjectMatch(tt.pattern, k) {
					t.Errorf("pattern %q misses key %q", tt.pattern, k)
				}
			}
			for _, k := range tt.miss {
				if subjectMatch(tt.pattern, k) {
					t.Errorf("pattern %q matches key %q", tt.pattern, k)
				}
			}
		})
	}
}

// subjectMatch is NATS subject matching of a literal subject against a pattern.
func subjectMatch(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}
