package fsm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

// BenchmarkDecideRun decides a typical run: 10 recipes (4 preference studies, 3 add-on
// studies, 3 others) for a client with 3 enrolled studies, one of which the run no
// longer sees.
func BenchmarkDecideRun(b *testing.B) {
	recipes := func(withC bool) []domain.RecipeReport {
		var rs []domain.RecipeReport
		for i := range 4 {
			if i == 2 && !withC {
				continue
			}
			rs = append(rs, prefRecipe(domain.RecipeID(i+1), fmt.Sprintf("pref-%d", i), fmt.Sprintf("browser.p%d", i), domain.RecipeSuccess))
		}
		for i := range 3 {
			rs = append(rs, addonRecipe(domain.RecipeID(100+i), fmt.Sprintf("addon-%d", i), fmt.Sprintf("a%d@shield", i)))
		}
		for i := range 3 {
			rs = append(rs, domain.RecipeReport{ID: domain.RecipeID(200 + i), Action: "show-heartbeat", Status: domain.RecipeSuccess})
		}
		return rs
	}
	actions := okActions(prefAction, addonAct, "show-heartbeat")
	// Three enrolled studies: pref-0, pref-2 and addon 100.
	s := apply(b, run(1, actions, recipes(true)[0], recipes(true)[2], recipes(true)[4]))
	c := run(2, actions, recipes(false)[:9]...)
	c.Recipes = append(c.Recipes, domain.RecipeReport{ID: 300, Action: "console-log", Status: domain.RecipeSuccess})
	if len(c.Recipes) != 10 || len(s.Active()) != 3 {
		b.Fatalf("got %d recipes and %d enrolled studies, want 10 and 3", len(c.Recipes), len(s.Active()))
	}
	ctx := context.Background()
	b.ReportAllocs()
	var events int
	for b.Loop() {
		d, err := fsm.Decide(ctx, s, c)
		if err != nil {
			b.Fatal(err)
		}
		events = len(d.Events)
	}
	b.ReportMetric(float64(events), "events/op")
}
