package audit

import (
	"fmt"
	"strings"
)

// CheckStatus is the verdict of one check.
type CheckStatus string

// Check statuses: a verification is OK only for what it checked.
const (
	CheckOK         CheckStatus = "OK"
	CheckFailed     CheckStatus = "FAILED"
	CheckNotChecked CheckStatus = "NOT CHECKED"
)

// Check is one named check of a verification and what it covered (or why it was not
// made).
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

// Names of the checks, in the order a report lists them.
const (
	CheckDecode      = "decode"      // every commit and rejection decodes
	CheckTransitions = "transitions" // events well formed, legal, from the recorded state, on their client's subject
	CheckChain       = "chain"       // per-client hash chains unbroken
	CheckAuthorship  = "authorship"  // every commit and rejection written by the holder of the commit key
	CheckCheckpoints = "checkpoints" // the running digest equals every checkpoint's
	CheckSignatures  = "signatures"  // the checkpoints' signatures verify
	CheckViews       = "views"       // the live views equal the fold of the log
)

// Verdict is the one-line summary of r's checks, e.g. "decode OK, chain OK,
// authorship NOT CHECKED, …": never a bare OK.
func (r *Report) Verdict() string {
	parts := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		parts[i] = c.Name + " " + string(c.Status)
	}
	return strings.Join(parts, ", ")
}

// Complete reports whether every check was made and none failed.
func (r *Report) Complete() bool {
	for _, c := range r.Checks {
		if c.Status != CheckOK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// checks computes the report's checks once the replay is finished.
func (v *Verifier) checks(r *Report) []Check {
	status := func(kinds ...FaultKind) (CheckStatus, int) {
		n := 0
		for _, k := range kinds {
			n += v.byKind[k]
		}
		if n > 0 {
			return CheckFailed, n
		}
		return CheckOK, 0
	}
	withFaults := func(detail string, n int) string {
		if n > 0 {
			return fmt.Sprintf("%s; %d fault(s)", detail, n)
		}
		return detail
	}
	var out []Check
	add := func(name string, st CheckStatus, detail string) {
		out = append(out, Check{Name: name, Status: st, Detail: detail})
	}

	st, n := status(FaultUndecodable)
	add(CheckDecode, st, withFaults(fmt.Sprintf("%d commits and %d rejections in %d messages (seq %d..%d)",
		r.Commits, r.Rejections, r.Messages, r.FirstSeq, r.LastSeq), n))

	st, n = status(FaultInvalidEvent, FaultIllegalTransition, FaultState, FaultSubject, FaultAppliedTwice)
	add(CheckTransitions, st, withFaults(fmt.Sprintf("%d events, %d transitions checked against the state machine", r.Events, r.Transitions), n))

	st, n = status(FaultChain)
	anchor := "each client's chain from its first commit"
	if !v.opts.Anchored {
		anchor = "each client's first commit in this window taken on trust"
	}
	add(CheckChain, st, withFaults(fmt.Sprintf("%d clients, %s", len(v.clients), anchor), n))

	if v.opts.CommitKey == nil {
		add(CheckAuthorship, CheckNotChecked, "no commit key given: any writer of the log could have written these commits")
	} else {
		st, n = status(FaultAuthorship)
		add(CheckAuthorship, st, withFaults(fmt.Sprintf("%d commits and rejections authenticated by commit key %s, %d not",
			r.Authenticated, v.opts.CommitKey.ID(), r.Forged), n))
	}

	switch {
	case !v.opts.Complete:
		add(CheckCheckpoints, CheckNotChecked, "not a replay of the whole stream from its first message")
	case len(v.opts.Checkpoints) == 0:
		add(CheckCheckpoints, CheckNotChecked, "no checkpoints found")
	default:
		st, n = status(FaultCheckpoint)
		add(CheckCheckpoints, st, withFaults(fmt.Sprintf("%d checkpoints against the running digest %s", r.CheckpointsChecked, short(r.Digest)), n))
	}

	switch {
	case !v.opts.Complete || len(v.opts.Checkpoints) == 0:
		add(CheckSignatures, CheckNotChecked, "no checkpoints to check")
	case v.opts.PublicKey == nil:
		add(CheckSignatures, CheckNotChecked, "no public key given: the checkpoints could have been written by anyone")
	default:
		st, n = status(FaultSignature)
		add(CheckSignatures, st, withFaults(fmt.Sprintf("%d checkpoints signed by key %s", r.CheckpointsChecked, KeyID(v.opts.PublicKey)), n))
	}

	if r.Views == nil {
		add(CheckViews, CheckNotChecked, "views not compared (only on a replay of the whole stream)")
	} else {
		st, n = status(FaultView, FaultViewsBehind)
		at := fmt.Sprintf("at seq %d of %d", r.Views.Reflects, r.Views.Head)
		if r.Views.Behind() {
			at += fmt.Sprintf(", BEHIND the log by %d", r.Views.Head-r.Views.Reflects)
		}
		add(CheckViews, st, withFaults(fmt.Sprintf("%s: %d keys at checkpoint %d against the fold to seq %d", at, r.Views.Keys, r.Views.Checkpoint, r.Views.FoldedTo), n))
	}
	return out
}
