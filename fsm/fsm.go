package fsm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	looplab "github.com/looplab/fsm"

	"github.com/studyd/studyd/domain"
)

// machine is one transition table in looplab's shape, built once; every call builds a
// fresh looplab machine from it, so no machine outlives the call that fired it.
type machine struct {
	name   string
	table  []Transition
	states []domain.State
	events looplab.Events
}

func newMachine(name string, table []Transition, states []domain.State) *machine {
	m := &machine{name: name, table: table, states: states}
	for _, t := range table {
		m.events = append(m.events, looplab.EventDesc{Name: string(t.Event), Src: []string{string(t.From)}, Dst: string(t.To)})
	}
	return m
}

var (
	enrollmentMachine = newMachine("enrollment", table, domain.States)
	rolloutMachine    = newMachine("rollout", rolloutTable, domain.RolloutStates)
)

// machineFor returns the machine of an object's records: rollouts (and their
// rollbacks) have their own.
func machineFor(o domain.Object) *machine {
	if o.IsRollout() {
		return rolloutMachine
	}
	return enrollmentMachine
}

// fire returns the state reached by firing method m in state from. It returns an error
// wrapping domain.ErrIllegalTransition if the table has no such edge. A study's
// unenrollFailed moves nothing: it is legal in every state and returns from.
func (mc *machine) fire(ctx context.Context, from domain.State, m domain.Method) (domain.State, error) {
	if mc == enrollmentMachine && m == domain.MethodUnenrollFailed && mc.known(from) {
		return from, ctx.Err()
	}
	machine := looplab.NewFSM(string(from), mc.events, nil)
	err := machine.Event(ctx, string(m))
	var same looplab.NoTransitionError
	switch {
	case err == nil:
		return domain.State(machine.Current()), nil
	case errors.As(err, &same) && same.Err == nil:
		return from, nil // a self-loop (enrollFailed after enrollFailed) is a legal transition
	case errors.As(err, new(looplab.InvalidEventError)), errors.As(err, new(looplab.UnknownEventError)):
		return from, fmt.Errorf("%w: %s cannot happen in %s state %s (allowed: %s)",
			domain.ErrIllegalTransition, m, mc.name, from, mc.allowedFrom(from))
	default:
		return from, fmt.Errorf("fsm: fire %s from %s: %w", m, from, err)
	}
}

func (mc *machine) known(s domain.State) bool {
	for _, k := range mc.states {
		if k == s {
			return true
		}
	}
	return false
}

// allowedFrom lists the events the table allows in state s, for error messages.
func (mc *machine) allowedFrom(s domain.State) string {
	var out []string
	for _, t := range mc.table {
		if t.From == s {
			out = append(out, string(t.Event))
		}
	}
	if len(out) == 0 {
		return "nothing, " + string(s) + " is terminal"
	}
	return strings.Join(out, ", ")
}

// CheckTransition reports whether e's From→To is legal for its type under its object's
// table, for audits of a recorded log. Enrollment events must name a table edge (a
// study's unenrollFailed: From = To, any state); other events must carry no states. The
// error wraps domain.ErrIllegalTransition.
func CheckTransition(e domain.Event) error {
	m := e.Type.Method()
	if m == "" {
		if e.From != "" || e.To != "" {
			return fmt.Errorf("%w: %s is not an enrollment event but records %s→%s",
				domain.ErrIllegalTransition, e.Type, e.From, e.To)
		}
		return nil
	}
	mc := machineFor(e.Object)
	to, err := mc.fire(context.Background(), e.From, m)
	if err != nil {
		return fmt.Errorf("check %s: %w", e, err)
	}
	if to != e.To {
		return fmt.Errorf("%w: check %s: %s from %s leads to %s, not %s",
			domain.ErrIllegalTransition, e, m, e.From, to, e.To)
	}
	return nil
}
