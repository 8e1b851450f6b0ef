package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestCommandExamples decodes every JSON example of docs/commands.md the way the
// intake does (unknown fields and trailing data refused), validates it, and decides
// the examples in order for one new client: each must be accepted and decide at least
// one event, and every command type must have an example.
func TestCommandExamples(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "commands.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := jsonBlock.FindAllSubmatch(b, -1)
	if len(blocks) == 0 {
		t.Fatal("no ```json examples in docs/commands.md")
	}
	seen := map[domain.CommandType]int{}
	var s domain.ClientState
	for i, m := range blocks {
		dec := json.NewDecoder(bytes.NewReader(m[1]))
		dec.DisallowUnknownFields()
		var c domain.Command
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("example %d: decode: %v\n%s", i+1, err, m[1])
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("example %d: trailing data after the command", i+1)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("example %d (%s): %v", i+1, c.Type, err)
		}
		seen[c.Type]++
		d, err := fsm.Decide(context.Background(), s, c)
		if err != nil {
			t.Fatalf("example %d (%s) is not accepted after the examples before it: %v", i+1, c.Type, err)
		}
		if len(d.Events) == 0 {
			t.Errorf("example %d (%s) decides no events, want it to show something", i+1, c.Type)
		}
		for _, e := range d.Events {
			if e.Type != domain.EventUptakeReported {
				t.Logf("example %d %s: %s", i+1, c.Type, e)
			}
		}
		s = d.State
	}
	for _, typ := range domain.CommandTypes {
		if seen[typ] == 0 {
			t.Errorf("got %d examples of %s, want at least 1", seen[typ], typ)
		}
	}
}
