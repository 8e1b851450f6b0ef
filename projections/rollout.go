package projections

import (
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// RolloutView is what the log says about one preference rollout across all clients:
// how many clients it reached, how many are in each state of the rollout machine now
// (active, rolled back, graduated), and its updates and failures. It is a view of its
// own: a rollout is not a study (no branches, no recipe-not-seen, no opt-out).
type RolloutView struct {
	Slug string `json:"slug"`
	// Seq is the position of the last commit this view reflects.
	Seq uint64 `json:"seq"`

	Enrolled uint64 `json:"enrolled"` // enroll events, ever
	// States counts the clients now in each rollout state. Signed, so that a fold of a
	// range that starts mid-log can hold transitions out of states it did not see.
	States map[domain.State]int64 `json:"states,omitempty"`
	// Updated counts update events by the state they left (previousState).
	Updated map[domain.State]uint64 `json:"updated,omitempty"`
	// EnrollFailed, Graduated, UnenrollFailed count those events per reason; RolledBack
	// counts rollbacks.
	EnrollFailed   map[string]uint64 `json:"enroll_failed,omitempty"`
	Graduated      map[string]uint64 `json:"graduated,omitempty"`
	RolledBack     uint64            `json:"rolled_back,omitempty"`
	UnenrollFailed map[string]uint64 `json:"unenroll_failed,omitempty"`
}

// IsRolloutEvent reports whether e changes a rollout view.
func IsRolloutEvent(e *domain.Event) bool {
	return e.Object.IsRollout() && e.Type.Method() != ""
}

// Apply folds one rollout event into the view; other events are ignored.
func (v *RolloutView) Apply(e *domain.Event) {
	if !IsRolloutEvent(e) {
		return
	}
	if v.Slug == "" {
		v.Slug = e.Key
	}
	if e.From != e.To {
		if v.States == nil {
			v.States = make(map[domain.State]int64, 3)
		}
		if e.From != domain.StateNone {
			v.States[e.From]--
		}
		v.States[e.To]++
	}
	switch e.Type {
	case domain.EventEnrolled:
		v.Enrolled++
	case domain.EventEnrollFailed:
		incr(&v.EnrollFailed, e.Reason)
	case domain.EventUpdated:
		if v.Updated == nil {
			v.Updated = make(map[domain.State]uint64, 3)
		}
		v.Updated[e.From]++
	case domain.EventGraduated:
		incr(&v.Graduated, e.Reason)
	case domain.EventUnenrolled:
		v.RolledBack++
	case domain.EventUnenrollFailed:
		incr(&v.UnenrollFailed, e.Reason)
	}
}

// Merge adds o's counts to v: views of disjoint ranges of the log merge to the view of
// their union.
func (v *RolloutView) Merge(o *RolloutView) {
	if v.Slug == "" {
		v.Slug = o.Slug
	}
	v.Seq = max(v.Seq, o.Seq)
	v.Enrolled += o.Enrolled
	for s, n := range o.States {
		if v.States == nil {
			v.States = make(map[domain.State]int64, len(o.States))
		}
		v.States[s] += n
	}
	for s, n := range o.Updated {
		if v.Updated == nil {
			v.Updated = make(map[domain.State]uint64, len(o.Updated))
		}
		v.Updated[s] += n
	}
	mergeCounts(&v.EnrollFailed, o.EnrollFailed)
	mergeCounts(&v.Graduated, o.Graduated)
	v.RolledBack += o.RolledBack
	mergeCounts(&v.UnenrollFailed, o.UnenrollFailed)
}

// Rollouts is the rollout views of every rollout the log mentions, by slug. The zero
// value is not usable; call NewRollouts.
type Rollouts struct {
	// Seq is the position of the last commit folded; commits at or below it are ignored.
	Seq   uint64
	Views map[string]*RolloutView
}

// NewRollouts returns an empty set of rollout views.
func NewRollouts() *Rollouts { return &Rollouts{Views: make(map[string]*RolloutView)} }

// Apply folds the commit at position pos, unless the views already reflect it. It
// reports whether it folded the commit.
func (r *Rollouts) Apply(pos uint64, c *eventstore.Commit) bool {
	if pos <= r.Seq {
		return false
	}
	r.Seq = pos
	for i := range c.Events {
		e := &c.Events[i]
		if !IsRolloutEvent(e) {
			continue
		}
		v := r.View(e.Key)
		v.Apply(e)
		v.Seq = pos
	}
	return true
}

// View returns the view of rollout slug, creating an empty one.
func (r *Rollouts) View(slug string) *RolloutView {
	v, ok := r.Views[slug]
	if !ok {
		v = &RolloutView{Slug: slug}
		r.Views[slug] = v
	}
	return v
}

// Merge adds o's views to r.
func (r *Rollouts) Merge(o *Rollouts) {
	for slug, v := range o.Views {
		r.View(slug).Merge(v)
	}
	r.Seq = max(r.Seq, o.Seq)
}
