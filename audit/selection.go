package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Selection is the part of a replayed stream an audit is about, beyond what the
// consumer itself selects (client subject, sequence and stored-time range): one study,
// and a range of commit times. Zero fields select everything.
type Selection struct {
	// Study keeps the commits with an event about this study, and of those only the
	// study's events in per-event formats.
	Study domain.StudyRef
	// Since and Until bound the commit's At (the command's own time, which is not the
	// time the stream stored it): Since inclusive, Until exclusive.
	Since, Until time.Time
}

// ParseStudy reads "<object>/<key>", e.g. preference_study/pref-flip-1 or
// addon_study/42.
func ParseStudy(v string) (domain.StudyRef, error) {
	object, key, ok := strings.Cut(v, "/")
	if !ok {
		return domain.StudyRef{}, fmt.Errorf("%w: study %q is not <object>/<key> (e.g. preference_study/my-slug, addon_study/42)", domain.ErrInvalid, v)
	}
	ref := domain.StudyRef{Object: domain.Object(object), Key: key}
	if err := ref.Validate(); err != nil {
		return domain.StudyRef{}, fmt.Errorf("study %q: %w", v, err)
	}
	return ref, nil
}

// Match reports whether c is selected.
func (s Selection) Match(c *eventstore.Commit) bool {
	if !s.Since.IsZero() && c.At.Before(s.Since) {
		return false
	}
	if !s.Until.IsZero() && !c.At.Before(s.Until) {
		return false
	}
	if s.Study.Object == "" {
		return true
	}
	for i := range c.Events {
		if s.about(&c.Events[i]) {
			return true
		}
	}
	return false
}

// Events calls fn with each selected event of a selected commit, with its index in
// the commit.
func (s Selection) Events(c *eventstore.Commit, fn func(i int, e *domain.Event) error) error {
	for i := range c.Events {
		e := &c.Events[i]
		if s.Study.Object != "" && !s.about(e) {
			continue
		}
		if err := fn(i, e); err != nil {
			return err
		}
	}
	return nil
}

func (s Selection) about(e *domain.Event) bool {
	return e.Type.Method() != "" && e.Object == s.Study.Object && e.Key == s.Study.Key
}
