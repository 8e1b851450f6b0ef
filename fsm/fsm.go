package fsm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	looplab "github.com/looplab/fsm"

	"github.com/studyd/studyd/domain"
)

// events is the table in looplab's shape, built once; every call builds a fresh
// machine from it, so no machine outlives the call that fired it.
var events = func() looplab.Events {
	var evs looplab.Events
	for _, t := range table {
		evs = append(evs, looplab.EventDesc{Name: string(t.Event), Src: []string{string(t.From)}, Dst: string(t.To)})
	}
	return evs
}()

// fire returns the state reached by firing method m in state from. It returns an error
// wrapping domain.ErrIllegalTransition if the table has no such edge.
func fire(ctx context.Context, from domain.State, m domain.Method) (domain.State, error) {
	machine := looplab.NewFSM(string(from), events, nil)
	err := machine.Event(ctx, string(m))
	var same looplab.NoTransitionError
	switch {
	case err == nil:
		return domain.State(machine.Current()), nil
	case errors.As(err, &same) && same.Err == nil:
		return from, nil // a self-loop (enrollFailed after enrollFailed) is a legal transition
	case errors.As(err, new(looplab.InvalidEventError)), errors.As(err, new(looplab.UnknownEventError)):
		return from, fmt.Errorf("%w: %s cannot happen in state %s (allowed: %s)",
			domain.ErrIllegalTransition, m, from, allowedFrom(from))
	default:
		return from, fmt.Errorf("fsm: fire %s from %s: %w", m, from, err)
	}
}

// allowedFrom lists the events the table allows in state s, for error messages.
func allowedFrom(s domain.State) string {
	var out []string
	for _, t := range table {
		if t.From == s {
			out = append(out, string(t.Event))
		}
	}
	if len(out) == 0 {
		return "nothing, " + string(s) + " is terminal"
	}
	return strings.Join(out, ", ")
}

// CheckTransition reports whether e's From→To is legal for its type under the table,
// for audits of a recorded log. Enrollment events must name a table edge; other events
// must carry no states. The error wraps domain.ErrIllegalTransition.
func CheckTransition(e domain.Event) error {
	m := e.Type.Method()
	if m == "" {
		if e.From != "" || e.To != "" {
			return fmt.Errorf("%w: %s is not an enrollment event but records %s→%s",
				domain.ErrIllegalTransition, e.Type, e.From, e.To)
		}
		return nil
	}
	to, err := fire(context.Background(), e.From, m)
	if err != nil {
		return fmt.Errorf("check %s: %w", e, err)
	}
	if to != e.To {
		return fmt.Errorf("%w: check %s: %s from %s leads to %s, not %s",
			domain.ErrIllegalTransition, e, m, e.From, to, e.To)
	}
	return nil
}
