package projections

import (
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

// StudyView is what the log says about one study across all clients: how many joined,
// how many are in it now, per branch, and why the others left or failed to start. It
// is also the JSON value of the study's key in the studyd_studies bucket.
type StudyView struct {
	Object domain.Object `json:"object"`
	Key    string        `json:"key"`
	Slug   string        `json:"slug,omitempty"` // the telemetry value, from the latest event that named it
	// Seq is the position of the last commit this view reflects (the projector stamps
	// the sequence of the flush that wrote it).
	Seq uint64 `json:"seq"`

	Enrolled uint64 `json:"enrolled"` // enroll events, ever
	// Active is enrollments currently in state enrolled. It is signed so that a fold of
	// a range that starts mid-log (an audit window) can hold unenrollments whose
	// enrollments it did not see; over the whole log it is never negative.
	Active   int64                  `json:"active"`
	Branches map[string]BranchCount `json:"branches,omitempty"`
	// Unenrolled counts unenroll events per reason, EnrollFailed enrollFailed events
	// per reason.
	Unenrolled   map[string]uint64 `json:"unenrolled,omitempty"`
	EnrollFailed map[string]uint64 `json:"enroll_failed,omitempty"`
	// DidResetValue counts preference-study unenrollments by the didResetValue extra
	// ("true" or "false").
	DidResetValue map[string]uint64 `json:"did_reset_value,omitempty"`
	// ExperimentTypes counts preference-study enrollments by experimentType.
	ExperimentTypes map[string]uint64 `json:"experiment_types,omitempty"`
	// Ratios are the study's branches and ratios as its recipe gave them, from the
	// latest enrollment that recorded them: the study's target split.
	Ratios []recipe.Ratio `json:"ratios,omitempty"`

	// Events of later Firefox: stops that found no active study (unenrollFailed, per
	// reason), overridden preferences (expPrefChanged, per preference), add-on updates
	// and failed updates (per reason).
	UnenrollFailed map[string]uint64 `json:"unenroll_failed,omitempty"`
	ExpPrefChanged map[string]uint64 `json:"exp_pref_changed,omitempty"`
	Updated        uint64            `json:"updated,omitempty"`
	UpdateFailed   map[string]uint64 `json:"update_failed,omitempty"`
}

// BranchCount is one branch of a study view.
type BranchCount struct {
	Enrolled uint64 `json:"enrolled"`
	Active   int64  `json:"active"`
}

// Study returns the view's study reference.
func (v *StudyView) Study() domain.StudyRef { return domain.StudyRef{Object: v.Object, Key: v.Key} }

// IsStudyEvent reports whether e changes a study view (a rollout's events change its
// RolloutView instead).
func IsStudyEvent(e *domain.Event) bool {
	if e.Object.IsRollout() {
		return false
	}
	switch e.Type {
	case domain.EventEnrolled, domain.EventEnrollFailed, domain.EventUnenrolled,
		domain.EventUnenrollFailed, domain.EventExpPrefChanged, domain.EventUpdated, domain.EventUpdateFailed:
		return true
	}
	return false
}

// Apply folds one study event into the view; other events are ignored. The caller
// routes events to the view of their study and handles positions.
func (v *StudyView) Apply(e *domain.Event) {
	if !IsStudyEvent(e) {
		return
	}
	if v.Object == "" {
		v.Object, v.Key = e.Object, e.Key
	}
	if e.Slug != "" {
		v.Slug = e.Slug
	}
	if len(e.Ratios) > 0 {
		v.Ratios = e.Ratios
	}
	// Active follows the FSM's own from → to, so a later state that also leaves or
	// enters "enrolled" is counted without changing this fold.
	delta := int64(0)
	if e.To == domain.StateEnrolled && e.From != domain.StateEnrolled {
		delta = 1
	} else if e.From == domain.StateEnrolled && e.To != domain.StateEnrolled {
		delta = -1
	}
	v.Active += delta
	// Add-on studies have no branches: their enrollments count only in the totals, never
	// under a "" branch.
	if e.Branch != "" && (delta != 0 || e.Type == domain.EventEnrolled) {
		if v.Branches == nil {
			v.Branches = make(map[string]BranchCount, 2)
		}
		b := v.Branches[e.Branch]
		b.Active += delta
		if e.Type == domain.EventEnrolled {
			b.Enrolled++
		}
		v.Branches[e.Branch] = b
	}
	switch e.Type {
	case domain.EventEnrolled:
		v.Enrolled++
		if v.Object == domain.PreferenceStudy && e.ExperimentType != "" {
			incr(&v.ExperimentTypes, string(e.ExperimentType))
		}
	case domain.EventEnrollFailed:
		incr(&v.EnrollFailed, e.Reason)
	case domain.EventUnenrolled:
		incr(&v.Unenrolled, e.Reason)
		if v.Object == domain.PreferenceStudy {
			incr(&v.DidResetValue, domain.DidResetValue(e.ResetValue))
		}
	case domain.EventUnenrollFailed:
		incr(&v.UnenrollFailed, e.Reason)
	case domain.EventExpPrefChanged:
		incr(&v.ExpPrefChanged, e.Preference)
	case domain.EventUpdated:
		v.Updated++
	case domain.EventUpdateFailed:
		incr(&v.UpdateFailed, e.Reason)
	}
}

// Merge adds o's counts to v: every field is a sum, so views of disjoint ranges of the
// log merge to the view of their union. The slug and ratios of the later range win.
func (v *StudyView) Merge(o *StudyView) {
	if v.Object == "" {
		v.Object, v.Key = o.Object, o.Key
	}
	if o.Slug != "" && (o.Seq >= v.Seq || v.Slug == "") {
		v.Slug = o.Slug
	}
	if len(o.Ratios) > 0 && (o.Seq >= v.Seq || len(v.Ratios) == 0) {
		v.Ratios = o.Ratios
	}
	v.Seq = max(v.Seq, o.Seq)
	v.Enrolled += o.Enrolled
	v.Active += o.Active
	for name, b := range o.Branches {
		if v.Branches == nil {
			v.Branches = make(map[string]BranchCount, len(o.Branches))
		}
		have := v.Branches[name]
		have.Enrolled += b.Enrolled
		have.Active += b.Active
		v.Branches[name] = have
	}
	mergeCounts(&v.Unenrolled, o.Unenrolled)
	mergeCounts(&v.EnrollFailed, o.EnrollFailed)
	mergeCounts(&v.DidResetValue, o.DidResetValue)
	mergeCounts(&v.ExperimentTypes, o.ExperimentTypes)
	mergeCounts(&v.UnenrollFailed, o.UnenrollFailed)
	mergeCounts(&v.ExpPrefChanged, o.ExpPrefChanged)
	v.Updated += o.Updated
	mergeCounts(&v.UpdateFailed, o.UpdateFailed)
}

func incr(m *map[string]uint64, k string) {
	if *m == nil {
		*m = make(map[string]uint64, 2)
	}
	(*m)[k]++
}

func mergeCounts(dst *map[string]uint64, src map[string]uint64) {
	for k, n := range src {
		if *dst == nil {
			*dst = make(map[string]uint64, len(src))
		}
		(*dst)[k] += n
	}
}

// Studies is the study views of every study the log mentions. The zero value is not
// usable; call NewStudies.
type Studies struct {
	// Seq is the position of the last commit folded; commits at or below it are ignored.
	Seq   uint64
	Views map[domain.StudyRef]*StudyView
}

// NewStudies returns an empty set of views.
func NewStudies() *Studies { return &Studies{Views: make(map[domain.StudyRef]*StudyView)} }

// Apply folds the commit at position pos, unless the views already reflect it. It
// reports whether it folded the commit.
func (s *Studies) Apply(pos uint64, c *eventstore.Commit) bool {
	if pos <= s.Seq {
		return false
	}
	s.Seq = pos
	for i := range c.Events {
		e := &c.Events[i]
		if !IsStudyEvent(e) {
			continue
		}
		v := s.View(e.Study())
		v.Apply(e)
		v.Seq = pos
	}
	return true
}

// View returns the view of study ref, creating an empty one.
func (s *Studies) View(ref domain.StudyRef) *StudyView {
	v, ok := s.Views[ref]
	if !ok {
		v = &StudyView{Object: ref.Object, Key: ref.Key}
		s.Views[ref] = v
	}
	return v
}

// Merge adds o's views to s (see StudyView.Merge).
func (s *Studies) Merge(o *Studies) {
	for ref, v := range o.Views {
		s.View(ref).Merge(v)
	}
	s.Seq = max(s.Seq, o.Seq)
}
