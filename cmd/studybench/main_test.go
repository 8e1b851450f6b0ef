package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
)

// TestMain lets the memory and scale scenarios re-execute the test binary as their
// child processes (a server, a pre-fill generator, an audit reader).
func TestMain(m *testing.M) {
	if isChild, err := runChildRole(context.Background()); isChild {
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickRun runs every scenario at tiny sizes and checks that each produced its
// figures: a smoke test of the benchmark, not a measurement.
func TestQuickRun(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--quick", "--json"}, os.Getenv, &out, &errOut); err != nil {
		t.Fatalf("run --quick: %v\n%s", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode the JSON report: %v\n%s", err, out.String())
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("scenarios failed: %v", rep.Errors)
	}
	want := map[string]int{"baseline": 4, "end to end": 2, "sync": 6, "instances": 3, "latency": 5, "audit replay": 3, "memory": 3, "scale 2k": 4, "scale 10k": 4}
	got := map[string]int{}
	for _, r := range rep.Rows {
		got[r.Scenario]++
		if r.Value <= 0 && !r.Difference {
			t.Errorf("%s / %s = %g, want a positive figure", r.Scenario, r.Figure, r.Value)
		}
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("scenario %q has %d rows, want %d", s, got[s], n)
		}
	}
}
