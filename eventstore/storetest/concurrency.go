package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// testConcurrentWriters races writers over a few clients, each command applied by
// load → decide → append and retried on conflict, as the application does. Every
// command must land exactly once and each client's chain must be unbroken, with its
// counter equal to its number of commands (no lost update).
func testConcurrentWriters(t *testing.T, s eventstore.Store) {
	const (
		writers   = 8
		perWriter = 20
		clients   = 3
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	conflicts := make(chan int, writers)
	for w := range writers {
		wg.Go(func() {
			retries := 0
			for i := range perWriter {
				client := domain.ClientID(fmt.Sprintf("client-%d", (w+i)%clients))
				cmd := fmt.Sprintf("w%d-%d", w, i)
				for attempt := 0; ; attempt++ {
					if attempt == 1000 {
						errs <- fmt.Errorf("%s: still conflicting after %d attempts", cmd, attempt)
						return
					}
					prev, err := s.Load(t.Context(), client)
					if err != nil {
						errs <- fmt.Errorf("load %s: %w", client, err)
						return
					}
					_, err = s.Append(t.Context(), next(client, prev, cmd, base), prev.Position)
					if errors.Is(err, eventstore.ErrConflict) {
						retries++
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("append %s: %w", cmd, err)
						return
					}
					break
				}
			}
			conflicts <- retries
		})
	}
	wg.Wait()
	close(errs)
	close(conflicts)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for n := range conflicts {
		total += n
	}
	t.Logf("%d conflicts retried", total)

	seen := map[string]int{}
	perClient := map[domain.ClientID]int{}
	last := map[domain.ClientID]eventstore.Record{}
	for _, r := range readAll(t, s, eventstore.Query{}) {
		c := r.Commit
		seen[c.CommandID]++
		perClient[c.Client]++
		if c.PrevHash != last[c.Client].Hash {
			t.Errorf("%s at %d: chain broken: prev hash %q, want %q", c.CommandID, r.Position, c.PrevHash, last[c.Client].Hash)
		}
		if want := base.Add(time.Duration(perClient[c.Client]) * time.Second); !c.State.LastRunAt.Equal(want) {
			t.Errorf("%s: got counter %v, want %v (a lost update)", c.CommandID, c.State.LastRunAt, want)
		}
		last[c.Client] = r
	}
	for w := range writers {
		for i := range perWriter {
			if cmd := fmt.Sprintf("w%d-%d", w, i); seen[cmd] != 1 {
				t.Errorf("command %s applied %d times, want 1", cmd, seen[cmd])
			}
		}
	}
	for client, r := range last {
		loaded, err := s.Load(t.Context(), client)
		if err != nil {
			t.Fatal(err)
		}
		wantRecord(t, "Load after the race", loaded, r)
	}
}
