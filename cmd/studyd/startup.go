package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// errPermanent marks a start-up failure that waiting cannot fix (e.g. a stream created
// with another --partitions): studyd exits with it instead of retrying.
var errPermanent = errors.New("cannot start")

// Backoff bounds of a start-up step that fails.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
	// stepTimeout bounds one attempt of a step, so that a request lost in a cluster
	// election is sent again instead of waited on.
	stepTimeout = 10 * time.Second
)

// readiness is what /readyz reports: while starting, the step studyd waits for and
// its last error; once started, problems the running parts report (a stuck
// partition makes studyd not ready) and notes that do not (parked commands).
type readiness struct {
	mu      sync.Mutex
	started bool
	waiting string // the step start-up is on
	attempt int
	lastErr string
	stopped bool
	// health, set once the parts run, returns their problems and notes.
	health func() (problems, notes []string)
}

// step records that start-up is now at what.
func (r *readiness) step(what string, attempt int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting, r.attempt, r.lastErr = what, attempt, ""
	if err != nil {
		r.lastErr = err.Error()
	}
}

// ready marks start-up done; health reports on the running parts from now on.
func (r *readiness) ready(health func() (problems, notes []string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started, r.waiting, r.lastErr, r.health = true, "", "", health
}

// isStarted reports whether start-up completed.
func (r *readiness) isStarted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

// waitingFor is the step start-up is on ("" once started).
func (r *readiness) waitingFor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}

// stop marks the drain: studyd no longer takes commands.
func (r *readiness) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
}

// report is /readyz's verdict and body.
func (r *readiness) report() (ok bool, body string) {
	r.mu.Lock()
	started, waiting, attempt, lastErr, stopped, health := r.started, r.waiting, r.attempt, r.lastErr, r.stopped, r.health
	r.mu.Unlock()
	var b strings.Builder
	switch {
	case stopped:
		return false, "not ready: draining\n"
	case !started:
		fmt.Fprintf(&b, "not ready: starting, waiting for %s", waiting)
		if lastErr != "" {
			fmt.Fprintf(&b, " (attempt %d failed: %s)", attempt, lastErr)
		}
		b.WriteString("\n")
		return false, b.String()
	}
	var problems, notes []string
	if health != nil {
		problems, notes = health()
	}
	if len(problems) == 0 {
		b.WriteString("ready\n")
	} else {
		b.WriteString("not ready\n")
	}
	for _, p := range problems {
		fmt.Fprintf(&b, "%s\n", p)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	return len(problems) == 0, b.String()
}

// retry runs one start-up step until it succeeds, fails permanently (errPermanent) or
// ctx ends, backing off between attempts; /readyz names the step and its last error
// meanwhile. Each attempt gets stepTimeout.
func retry(ctx context.Context, r *readiness, log *slog.Logger, what string, fn func(context.Context) error) error {
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		r.step(what, attempt, nil)
		actx, cancel := context.WithTimeout(ctx, stepTimeout)
		err := fn(actx)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("start-up step done", "step", what, "attempts", attempt)
			}
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("start-up stopped while waiting for %s: %w", what, ctx.Err())
		case errors.Is(err, errPermanent):
			return err
		}
		r.step(what, attempt, err)
		log.Warn("start-up step failed; retrying", "step", what, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("start-up stopped while waiting for %s: %w", what, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}
