package srm

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// Threshold is the p-value below which a sample-ratio mismatch is flagged; the
// usual choice for SRM checks, strict because a real mismatch is a broken experiment.
const Threshold = 0.001

// ParseRatios reads "control=1,treatment=1" into branch weights.
func ParseRatios(v string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(v, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: ratio %q is not branch=weight", domain.ErrInvalid, part)
		}
		f, err := strconv.ParseFloat(w, 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%w: ratio %q: weight must be a positive number", domain.ErrInvalid, part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: branch %q given twice in ratios", domain.ErrInvalid, name)
		}
		out[name] = f
	}
	return out, nil
}

// BranchHealth is one branch of a study against its expected share.
type BranchHealth struct {
	Branch   string  `json:"branch"`
	Weight   float64 `json:"weight"`
	Enrolled uint64  `json:"enrolled"` // enroll events, ever
	Active   int64   `json:"active"`
	Share    float64 `json:"share"`    // of all enrollments
	Expected float64 `json:"expected"` // enrollments the ratios predict
}

// StudyHealth is a study's enrollment against its branch ratios, with the chi-squared
// sample-ratio-mismatch test.
type StudyHealth struct {
	Study        domain.StudyRef   `json:"study"`
	Seq          uint64            `json:"seq"`
	Enrolled     uint64            `json:"enrolled"`
	Active       int64             `json:"active"`
	Branches     []BranchHealth    `json:"branches"`
	ChiSquared   float64           `json:"chi_squared"`
	DF           int               `json:"df"`
	PValue       float64           `json:"p_value"`
	SRM          bool              `json:"srm"` // p below Threshold
	Unenrolled   map[string]uint64 `json:"unenrolled,omitempty"`
	EnrollFailed map[string]uint64 `json:"enroll_failed,omitempty"`
	// RatiosFrom says where the expected split came from: "given" (the caller's),
	// "recipe" (the ratios the study's enrollments recorded) or "equal" (neither known).
	RatiosFrom string `json:"ratios_from"`
	Note       string `json:"note,omitempty"`
}

// Where StudyHealth's expected split came from.
const (
	RatiosGiven  = "given"
	RatiosRecipe = "recipe"
	RatiosEqual  = "equal"
)

// Health tests v's per-branch enrollments against ratios (branch → weight). Empty
// ratios mean the ratios the study's recipe gave (recorded with its enrollments), or
// equal weights over the branches seen when the log has none. A branch enrolled into
// that the ratios do not name, or give no weight, is a mismatch by itself (p = 0).
func Health(v *projections.StudyView, ratios map[string]float64) StudyHealth {
	h := StudyHealth{Study: v.Study(), Seq: v.Seq, Enrolled: v.Enrolled, Active: v.Active,
		Unenrolled: v.Unenrolled, EnrollFailed: v.EnrollFailed, Branches: []BranchHealth{}, RatiosFrom: RatiosGiven}
	weights := maps.Clone(ratios)
	switch {
	case len(weights) > 0:
	case len(v.Ratios) > 0:
		h.RatiosFrom = RatiosRecipe
		weights = map[string]float64{}
		for _, r := range v.Ratios {
			if r.Ratio > 0 {
				weights[r.Slug] = float64(r.Ratio)
			}
		}
	default:
		h.RatiosFrom = RatiosEqual
		weights = map[string]float64{}
		for b := range v.Branches {
			weights[b] = 1
		}
	}
	names := slices.Sorted(maps.Keys(weights))
	var unexpected []string
	for b, c := range v.Branches {
		if _, ok := weights[b]; !ok && c.Enrolled > 0 {
			unexpected = append(unexpected, b)
		}
	}
	slices.Sort(unexpected)
	var total float64
	for _, w := range weights {
		total += w
	}
	var enrolled uint64
	for _, b := range names {
		enrolled += v.Branches[b].Enrolled
	}
	for _, b := range append(names, unexpected...) {
		c := v.Branches[b]
		bh := BranchHealth{Branch: b, Weight: weights[b], Enrolled: c.Enrolled, Active: c.Active}
		if v.Enrolled > 0 {
			bh.Share = float64(c.Enrolled) / float64(v.Enrolled)
		}
		if total > 0 {
			bh.Expected = float64(enrolled) * weights[b] / total
		}
		h.Branches = append(h.Branches, bh)
	}
	switch {
	case len(unexpected) > 0:
		h.PValue, h.SRM = 0, true
		h.Note = fmt.Sprintf("enrollments in branches the ratios do not name: %s", strings.Join(unexpected, ", "))
		return h
	case len(names) < 2 || enrolled == 0:
		h.PValue = 1
		h.Note = "fewer than two branches or no enrollments: nothing to test"
		return h
	}
	for _, bh := range h.Branches {
		d := float64(bh.Enrolled) - bh.Expected
		h.ChiSquared += d * d / bh.Expected
	}
	h.DF = len(names) - 1
	h.PValue = ChiSquaredSF(h.ChiSquared, h.DF)
	h.SRM = h.PValue < Threshold
	return h
}
