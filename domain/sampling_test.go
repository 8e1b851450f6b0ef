package domain

import "testing"

func TestRatioSampleMatchesFirefox(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		input  string
		ratios []uint64
		want   int
	}{
		{name: "test-0 even split", input: "test-0", ratios: []uint64{1, 1}, want: 0},
		{name: "test-1 even split", input: "test-1", ratios: []uint64{1, 1}, want: 1},
		{name: "only third ratio non-zero", input: "test", ratios: []uint64{0, 0, 1, 0}, want: 2},
		{name: "single branch", input: "anything", ratios: []uint64{5}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := RatioSample(tt.input, tt.ratios)
			if err != nil {
				t.Fatalf("RatioSample(%q, %v) error: %v", tt.input, tt.ratios, err)
			}
			if got != tt.want {
				t.Errorf("RatioSample(%q, %v) = %d, want %d", tt.input, tt.ratios, got, tt.want)
			}
		})
	}
}

func TestRatioSampleRejectsEmptyAndZero(t *testing.T) {
	t.Parallel()
	for _, ratios := range [][]uint64{nil, {0, 0}} {
		if _, err := RatioSample("x", ratios); err == nil {
			t.Errorf("RatioSample(x, %v) error = nil, want an error", ratios)
		}
	}
}
