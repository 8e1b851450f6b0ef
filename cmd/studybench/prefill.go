package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// prefillEnv, set to a server's URL, turns this program into the scale run's pre-fill
// generator (runPrefill). The generator's simulated fleet and handler cache run to
// hundreds of megabytes of pointers at 10M events; in the measured process they would
// tax its garbage collector with a heap studyd does not have (271 and 278 µs of CPU
// a command at 10M in two runs with it, 218–244 µs in three without).
const prefillEnv = "STUDYBENCH_PREFILL"

// prefillPatience bounds one pre-fill step: 10M events take a few minutes.
const prefillPatience = 30 * time.Minute

// prefiller is the pre-fill generator in a child process.
type prefiller struct{ *child }

// startPrefiller starts a generator publishing to the server at url.
func startPrefiller(url string) (*prefiller, error) {
	c, err := startChild(prefillEnv, url)
	if err != nil {
		return nil, fmt.Errorf("pre-fill: %w", err)
	}
	return &prefiller{c}, nil
}

// fill has the generator (made on the first call, of clients over days) append
// commits until the log holds target events, numbering the next commit next+1 (its
// stream sequence: 0 on the first call), and returns how many commits it has written
// in all once the server has stored them.
func (p *prefiller) fill(clients, days int, target, next uint64) (commits uint64, err error) {
	line, err := p.ask(fmt.Sprintf("fill %d %d %d %d", clients, days, target, next), prefillPatience)
	if err != nil {
		return 0, fmt.Errorf("pre-fill: %w", err)
	}
	if _, err := fmt.Sscanf(line, "done %d", &commits); err != nil {
		return 0, fmt.Errorf("pre-fill: %s", line)
	}
	return commits, nil
}

// runPrefill is the child's side: it answers each "fill clients days target next"
// line of stdin with "done commits", or "error …", until stdin closes.
func runPrefill(ctx context.Context, url string, stdin io.Reader, stdout io.Writer) error {
	nc, err := nats.Connect(url, nats.Name("studybench-prefill"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncPending))
	if err != nil {
		return err
	}
	var g *generator
	var pubErr error
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var clients, days int
		var target, next uint64
		if _, err := fmt.Sscanf(sc.Text(), "fill %d %d %d %d", &clients, &days, &target, &next); err != nil {
			return fmt.Errorf("pre-fill: %q: %w", sc.Text(), err)
		}
		if g == nil {
			if g, err = newGenerator(clients, days, 5, false); err != nil {
				return err
			}
			g.store.lean = true
			g.store.sink = func(subject string, raw []byte) error {
				if _, err := js.PublishAsync(subject, raw); err != nil && pubErr == nil {
					pubErr = err
				}
				return pubErr
			}
		}
		if next != 0 {
			g.store.next = next // the pre-fill continues after the live commits
		}
		err := g.until(ctx, func(s *sinkStore) bool { return s.events >= target })
		if err == nil {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				err = fmt.Errorf("%d appends unacknowledged", js.PublishAsyncPending())
			}
		}
		if err != nil {
			answerError(stdout, err)
			continue
		}
		fmt.Fprintln(stdout, "done", g.store.commits)
	}
	return sc.Err()
}
