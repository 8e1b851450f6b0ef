package srm_test

import (
	"math"
	"testing"

	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/srm"
)

func TestChiSquaredSF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		x    float64
		df   int
		want float64
		tol  float64
	}{
		// Critical values from the standard tables (scipy.stats.chi2.isf).
		{name: "df1 5%", x: 3.841458820694124, df: 1, want: 0.05, tol: 1e-9},
		{name: "df1 1%", x: 6.634896601021214, df: 1, want: 0.01, tol: 1e-9},
		{name: "df2 5%", x: 5.991464547107979, df: 2, want: 0.05, tol: 1e-9},
		{name: "df3 5%", x: 7.814727903251178, df: 3, want: 0.05, tol: 1e-9},
		{name: "df4 1%", x: 13.276704135987622, df: 4, want: 0.01, tol: 1e-9},
		{name: "df10 5%", x: 18.307038053275146, df: 10, want: 0.05, tol: 1e-9},
		{name: "df100 5%", x: 124.34211340400407, df: 100, want: 0.05, tol: 1e-8},
		{name: "df1 0.1%", x: 10.827566170662733, df: 1, want: 0.001, tol: 1e-9},
		// Closed forms: df 1 is erfc(√(x/2)), df 2 is e^(−x/2), df 4 is e^(−x/2)(1+x/2).
		{name: "df1 closed form small x", x: 0.02, df: 1, want: math.Erfc(math.Sqrt(0.01)), tol: 1e-12},
		{name: "df1 closed form large x", x: 60, df: 1, want: math.Erfc(math.Sqrt(30)), tol: 1e-9},
		{name: "df2 closed form", x: 3.3, df: 2, want: math.Exp(-1.65), tol: 1e-12},
		{name: "df4 closed form", x: 9, df: 4, want: math.Exp(-4.5) * 5.5, tol: 1e-12},
		{name: "zero", x: 0, df: 3, want: 1, tol: 0},
		{name: "at the mean of df 1000", x: 1000, df: 1000, want: 0.49405285382921, tol: 1e-8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := srm.ChiSquaredSF(tt.x, tt.df)
			if rel := math.Abs(got-tt.want) / math.Max(tt.want, 1e-300); rel > tt.tol {
				t.Errorf("ChiSquaredSF(%v, %d) = %.15g, want %.15g (relative error %.3g > %.3g)", tt.x, tt.df, got, tt.want, rel, tt.tol)
			}
		})
	}
	if got := srm.ChiSquaredSF(1, 0); !math.IsNaN(got) {
		t.Errorf("ChiSquaredSF(1, 0) = %v, want NaN", got)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	view := func(counts map[string]uint64) *projections.StudyView {
		v := &projections.StudyView{Object: "preference_study", Key: "s", Branches: map[string]projections.BranchCount{}}
		for b, n := range counts {
			v.Branches[b] = projections.BranchCount{Enrolled: n, Active: int64(n)}
			v.Enrolled += n
		}
		return v
	}
	tests := []struct {
		name     string
		counts   map[string]uint64
		recorded []recipe.Ratio // the study view's ratios
		ratios   string
		wantP    float64
		srm      bool
		from     string // want RatiosFrom; "" = not checked
	}{
		{name: "balanced, equal by default", counts: map[string]uint64{"control": 500, "treatment": 500}, wantP: 1},
		// chi² = (450−500)²/500·2 = 10, df 1: p ≈ 0.0016, suspicious but above the threshold.
		{name: "borderline", counts: map[string]uint64{"control": 550, "treatment": 450}, wantP: srm.ChiSquaredSF(10, 1)},
		// chi² = 2·60²/500 = 14.4: p ≈ 0.00015.
		{name: "mismatch", counts: map[string]uint64{"control": 560, "treatment": 440}, wantP: srm.ChiSquaredSF(14.4, 1), srm: true},
		// 1:3 ratios met exactly.
		{name: "unequal ratios met", counts: map[string]uint64{"a": 250, "b": 750}, ratios: "a=1,b=3", wantP: 1},
		{name: "branch outside the ratios", counts: map[string]uint64{"a": 10, "c": 1}, ratios: "a=1,b=1", wantP: 0, srm: true},
		{name: "one branch", counts: map[string]uint64{"a": 10}, wantP: 1},
		// A 50/25/25 study split as its recipe asked: its recorded ratios are the default,
		// so it is healthy (equal weights would give chi² = 125, p ≈ 1e-27).
		{name: "recorded ratios by default", counts: map[string]uint64{"control": 500, "a": 250, "b": 250},
			recorded: []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "a", Ratio: 25}, {Slug: "b", Ratio: 25}},
			wantP:    1, from: srm.RatiosRecipe},
		{name: "given ratios win over recorded", counts: map[string]uint64{"control": 500, "a": 250, "b": 250},
			recorded: []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "a", Ratio: 25}, {Slug: "b", Ratio: 25}},
			ratios:   "control=1,a=1,b=1", wantP: srm.ChiSquaredSF(125, 2), srm: true, from: srm.RatiosGiven},
		{name: "a recorded zero-weight branch enrolled into", counts: map[string]uint64{"a": 10, "b": 10, "never": 1},
			recorded: []recipe.Ratio{{Slug: "a", Ratio: 1}, {Slug: "b", Ratio: 1}, {Slug: "never", Ratio: 0}},
			wantP:    0, srm: true, from: srm.RatiosRecipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ratios, err := srm.ParseRatios(tt.ratios)
			if err != nil {
				t.Fatal(err)
			}
			v := view(tt.counts)
			v.Ratios = tt.recorded
			h := srm.Health(v, ratios)
			if math.Abs(h.PValue-tt.wantP) > 1e-12*math.Max(1, tt.wantP) || h.SRM != tt.srm {
				t.Errorf("got p %v srm %t, want p %v srm %t (%+v)", h.PValue, h.SRM, tt.wantP, tt.srm, h)
			}
			if tt.from != "" && h.RatiosFrom != tt.from {
				t.Errorf("got ratios from %q, want %q", h.RatiosFrom, tt.from)
			}
		})
	}
	for _, bad := range []string{"a", "a=0", "a=-1", "a=1,a=2", "=1"} {
		if _, err := srm.ParseRatios(bad); err == nil {
			t.Errorf("ParseRatios(%q): got nil error, want one", bad)
		}
	}
}
