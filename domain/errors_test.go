package domain

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorsSayEachThingOnce: an error matching several sentinels names its problem
// once, not once per sentinel ("domain: unknown command type: domain: invalid: …").
func TestErrorsSayEachThingOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		is   []error
	}{
		{name: "parse", err: func() error { _, err := ParseCommandType("bogus"); return err }(), is: []error{ErrUnknownCommandType, ErrInvalid}},
		{name: "validate", err: Command{Type: "bogus", CommandID: "c", ClientID: "x"}.Validate(), is: []error{ErrUnknownCommandType, ErrInvalid}},
		{name: "enum", err: func() error { _, err := parseEnum("reason", "nope", []Reason{"a"}); return err }(), is: []error{ErrInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.err == nil {
				t.Fatal("got nil error")
			}
			for _, s := range tt.is {
				if !errors.Is(tt.err, s) {
					t.Errorf("errors.Is(%q, %v) = false, want true", tt.err, s)
				}
			}
			msg := tt.err.Error()
			for _, word := range []string{"domain:", "unknown"} {
				if n := strings.Count(msg, word); n != 1 {
					t.Errorf("error %q says %q %d times, want once", msg, word, n)
				}
			}
			if got := ClassifyRejection(tt.err); tt.name != "enum" && got != RejectUnknownType {
				t.Errorf("ClassifyRejection(%q) = %s, want %s", msg, got, RejectUnknownType)
			}
		})
	}
}
