package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/projections"
)

// precheck is the verifier's work on one commit that does not depend on the commits
// before it: whether each event is well formed and a legal transition, whether its
// time can be rendered, the hash its PrevHash names, and the key of its command id.
// Decode does it on the replay's decoding workers, so that the ordered pass (which one
// core runs, however many decode) only compares and looks up.
type precheck struct {
	done      bool
	prev      [32]byte // PrevHash parsed (prevNamed: it is 64 lowercase hex digits)
	prevNamed bool
	applied   uint64 // appliedKey of the client and command id ("" id: none)
	timeErr   error  // projections.CheckTime
	// bad lists the events that fail Validate or are no legal transition, in order;
	// nil in a sound commit.
	bad []eventFault
}

// eventFault is one event's fault, found before the ordered pass.
type eventFault struct {
	i    int
	kind FaultKind
	err  error
}

// precheckCommit does c's order-free checks.
func precheckCommit(c *eventstore.Commit) precheck {
	p := precheck{done: true, timeErr: projections.CheckTime(c)}
	p.prev, p.prevNamed = parseHash(c.PrevHash)
	if c.CommandID != "" {
		p.applied = appliedKey(c.Client, c.CommandID)
	}
	for i := range c.Events {
		e := &c.Events[i]
		if err := e.Validate(); err != nil {
			p.bad = append(p.bad, eventFault{i: i, kind: FaultInvalidEvent, err: err})
		} else if err := checkTransition(e); err != nil {
			p.bad = append(p.bad, eventFault{i: i, kind: FaultIllegalTransition, err: err})
		}
	}
	return p
}

// appliedKey is 64 bits of the sha256 of a client and one of its command ids: the
// verifier's record of what each commit applied (Verifier.applied).
func appliedKey(client domain.ClientID, commandID string) uint64 {
	var buf [160]byte // room for the usual ids, so that hashing them allocates nothing
	b := append(append(append(buf[:0], client...), 0), commandID...)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

type transitionKey struct {
	t        domain.EventType
	from, to domain.State
	rollout  bool // which machine: a rollout's, or a study's
}

// legalTransitions is every legal (type, from, to) of the two machines: fsm's table
// is fixed, and building a state machine per event would dominate a replay. It is
// built once and only read after, so the decoding workers share it without locks.
var legalTransitions = sync.OnceValue(func() map[transitionKey]bool {
	states := append(append([]domain.State{}, domain.States...), domain.RolloutStates...)
	legal := make(map[transitionKey]bool)
	for _, t := range domain.EventTypes {
		for _, from := range states {
			for _, to := range states {
				for _, o := range []domain.Object{domain.PreferenceStudy, domain.PreferenceRollout} {
					if fsm.CheckTransition(domain.Event{Type: t, From: from, To: to, Object: o}) == nil {
						legal[transitionKey{t: t, from: from, to: to, rollout: o.IsRollout()}] = true
					}
				}
			}
		}
	}
	return legal
})

// checkTransition is fsm.CheckTransition, looked up in legalTransitions; anything
// else (rare: only a faulty log has an illegal event) is checked itself, so that the
// fault names the event it is about.
func checkTransition(e *domain.Event) error {
	if legalTransitions()[transitionKey{t: e.Type, from: e.From, to: e.To, rollout: e.Object.IsRollout()}] {
		return nil
	}
	return fsm.CheckTransition(domain.Event{Type: e.Type, From: e.From, To: e.To, Object: e.Object, Key: e.Key})
}
