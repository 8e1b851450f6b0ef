package domain_test

import (
	"testing"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

func digestRun() domain.Command {
	return domain.Command{Type: domain.CommandRecipeRun, CommandID: "run-1", ClientID: "client-1",
		At: time.Date(2018, 3, 12, 14, 0, 0, 0, time.FixedZone("x", 3600)), RunnerStatus: domain.RunnerSuccess,
		Actions: []domain.ActionReport{{Name: "preference-experiment", Status: domain.ActionSuccess}},
		Recipes: []domain.RecipeReport{{ID: 42, Action: "preference-experiment", Status: domain.RecipeSuccess,
			Arguments: recipe.Must(map[string]any{"slug": "pref-flip-1", "preferenceName": "browser.feature",
				"branches": []map[string]any{{"slug": "control", "ratio": 1}, {"slug": "treatment", "ratio": 1}}})}}}
}

func TestDigestIsTheContent(t *testing.T) {
	a := digestRun()
	b := digestRun()
	b.At = b.At.UTC() // the same instant in another zone
	if a.Digest() != b.Digest() {
		t.Errorf("the same command in two zones: digests %s and %s, want equal", a.Digest(), b.Digest())
	}
	c := digestRun()
	c.Recipes[0].Status = domain.RecipeExecutionError
	if a.Digest() == c.Digest() {
		t.Errorf("two commands differing in a recipe's status share the digest %s", a.Digest())
	}
	if n := len(a.Digest()); n != 32 {
		t.Errorf("digest of %d hex digits, want 32", n)
	}
}

func BenchmarkDigest(b *testing.B) {
	cmd := digestRun()
	b.ReportAllocs()
	for b.Loop() {
		_ = cmd.Digest()
	}
}
