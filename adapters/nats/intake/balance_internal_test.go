package intake

import "testing"

func TestInstancesWaitingCountsThisInstanceOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		numWaiting int
		ownOpen    bool
		want       int
	}{
		{"own request open among two others", 3, true, 3},
		{"between two of its own pulls, two others waiting", 2, false, 3},
		{"alone, request open", 1, true, 1},
		{"alone, between pulls", 0, false, 1},
		{"own open but not yet seen by the server", 0, true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := instancesWaiting(tt.numWaiting, tt.ownOpen); got != tt.want {
				t.Errorf("instancesWaiting(%d, %v) = %d, want %d", tt.numWaiting, tt.ownOpen, got, tt.want)
			}
		})
	}
}
