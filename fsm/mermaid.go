package fsm

import (
	"fmt"
	"strings"

	"github.com/studyd/studyd/domain"
)

// Mermaid renders the enrollment transition table as a Mermaid stateDiagram-v2, edges
// in table order, with none as the start and every state without outgoing edges as an
// end. It is kept as the golden file testdata/enrollment.mmd and shown in the README.
func Mermaid() string { return enrollmentMachine.mermaid() }

// RolloutMermaid renders the rollout transition table the same way (golden file
// testdata/rollout.mmd, shown in the README).
func RolloutMermaid() string { return rolloutMachine.mermaid() }

func (mc *machine) mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", domain.StateNone)
	for _, t := range mc.table {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", t.From, t.To, t.Event)
	}
	for _, s := range mc.states {
		if mc.isTerminal(s) && mc.isReachable(s) {
			fmt.Fprintf(&b, "    %s --> [*]\n", s)
		}
	}
	return b.String()
}

func (mc *machine) isTerminal(s domain.State) bool {
	for _, t := range mc.table {
		if t.From == s {
			return false
		}
	}
	return true
}

func (mc *machine) isReachable(s domain.State) bool {
	for _, t := range mc.table {
		if t.To == s {
			return true
		}
	}
	return false
}
