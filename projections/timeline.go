package projections

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

// StudyBucketKey identifies one study's UTC hour or day: the key of a StudyBucket. It
// is comparable and serves directly as a map key.
type StudyBucketKey struct {
	Study  domain.StudyRef
	Period Period // PeriodHour or PeriodDay
	Start  int64  // the Unix second the bucket starts at
}

// BucketStart is when the key's bucket starts.
func (k StudyBucketKey) BucketStart() time.Time { return time.Unix(k.Start, 0).UTC() }

// BranchActivity counts the enrollment events of one branch in one bucket, by the
// state they entered.
type BranchActivity struct {
	Enrolled     uint64 `json:"enrolled,omitempty"`
	Unenrolled   uint64 `json:"unenrolled,omitempty"`
	EnrollFailed uint64 `json:"enroll_failed,omitempty"`
}

// StudyBucket is what happened to one study in one UTC hour or day: per branch, how
// many enrollments entered each state; unenrollments and enroll failures by reason;
// the times of the bucket's first and last event. It is the time-bucketed companion
// of StudyView (enrollment per branch over time, reasons over time, sample-ratio
// mismatch over time), and the JSON value of its key in the studyd_study_time bucket.
type StudyBucket struct {
	Object domain.Object `json:"object"`
	Key    string        `json:"key"`
	Period string        `json:"period"` // hour or day
	Start  time.Time     `json:"start"`  // the bucket's start (UTC)
	// Seq is the position of the last commit this bucket reflects.
	Seq uint64 `json:"seq"`
	// First and Last are the times of the first and last commit with an event of the
	// study in the bucket.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`

	// Enrolled counts the bucket's enroll events over all branches (add-on studies
	// have none); Branches splits them, and the other states, by branch.
	Enrolled     uint64                    `json:"enrolled,omitempty"`
	Branches     map[string]BranchActivity `json:"branches,omitempty"`
	Unenrolled   map[string]uint64         `json:"unenrolled,omitempty"`    // by reason
	EnrollFailed map[string]uint64         `json:"enroll_failed,omitempty"` // by reason
	// Action is the action that owns the study's enrollments, as the client's state
	// recorded it with the latest event that named one.
	Action string `json:"action,omitempty"`
	// Recipes are the candidates for the study's recipe, from every commit of the bucket
	// that enrolled a client or failed to: the recipe whose uptake event records the
	// action and arguments that name this study, or, in a log older than those records,
	// the ids of every recipe the run reported (a client enrolls only in a run that holds
	// the study's recipe, so these narrow to it as soon as two runs differ). Meaningful
	// only when RecipeEvents > 0 (the number of such events); an empty list then means
	// no recipe was common to them all.
	Recipes      []domain.RecipeID `json:"recipes,omitempty"`
	RecipeEvents uint64            `json:"recipe_events,omitempty"`
}

// Study returns the bucket's study reference.
func (b *StudyBucket) Study() domain.StudyRef { return domain.StudyRef{Object: b.Object, Key: b.Key} }

// BucketKey returns the bucket's key; a period that does not parse gives PeriodTotal.
func (b *StudyBucket) BucketKey() StudyBucketKey {
	p, _ := ParsePeriod(b.Period)
	return StudyBucketKey{Study: b.Study(), Period: p, Start: b.Start.Unix()}
}

// newStudyBucket returns the empty bucket of k.
func newStudyBucket(k StudyBucketKey) *StudyBucket {
	return &StudyBucket{Object: k.Study.Object, Key: k.Study.Key, Period: k.Period.String(), Start: k.BucketStart()}
}

// NewStudyBucket returns the empty bucket of k.
func NewStudyBucket(k StudyBucketKey) StudyBucket { return *newStudyBucket(k) }

// Apply folds study event e of commit c into the bucket; other events are ignored.
// The caller routes events to their bucket (EachStudyBucket) and handles positions.
func (b *StudyBucket) Apply(c *eventstore.Commit, e *domain.Event) {
	if !isTimelineEvent(e) {
		return
	}
	at := c.At.UTC()
	if b.First.IsZero() || at.Before(b.First) {
		b.First = at
	}
	if at.After(b.Last) {
		b.Last = at
	}
	var br BranchActivity
	switch e.Type {
	case domain.EventEnrolled:
		b.Enrolled++
		br.Enrolled = 1
	case domain.EventUnenrolled:
		br.Unenrolled = 1
		incr(&b.Unenrolled, e.Reason)
	case domain.EventEnrollFailed:
		br.EnrollFailed = 1
		incr(&b.EnrollFailed, e.Reason)
	}
	// Like the study view: an add-on study's enrollments count only in the totals,
	// never under a "" branch; events of other states only set the times.
	if e.Branch != "" && br != (BranchActivity{}) {
		if b.Branches == nil {
			b.Branches = make(map[string]BranchActivity, 2)
		}
		have := b.Branches[e.Branch]
		have.Enrolled += br.Enrolled
		have.Unenrolled += br.Unenrolled
		have.EnrollFailed += br.EnrollFailed
		b.Branches[e.Branch] = have
	}
	for _, en := range c.State.Enrollments {
		if en.Object == e.Object && en.Key == e.Key && en.Action != "" {
			b.Action = en.Action
			break
		}
	}
	if e.Type == domain.EventEnrolled || e.Type == domain.EventEnrollFailed {
		b.narrowRecipes(recipesOf(c, e.Study()), 1)
	}
}

// narrowRecipes intersects the candidates with ids, which stand for n events.
func (b *StudyBucket) narrowRecipes(ids []domain.RecipeID, n uint64) {
	if n == 0 {
		return
	}
	if b.RecipeEvents == 0 {
		b.Recipes = slices.Clone(ids)
	} else {
		b.Recipes = slices.DeleteFunc(b.Recipes, func(id domain.RecipeID) bool {
			_, found := slices.BinarySearch(ids, id)
			return !found
		})
	}
	if len(b.Recipes) == 0 {
		b.Recipes = nil
	}
	b.RecipeEvents += n
}

// recipesOf returns the sorted ids of the recipes of commit c that may run study ref:
// the one whose recorded action and arguments name it, or, when c's recipe uptake
// events record no arguments (a log written before they were recorded), every recipe
// whose uptake c reports.
func recipesOf(c *eventstore.Commit, ref domain.StudyRef) []domain.RecipeID {
	var all, named []domain.RecipeID
	recorded := false
	for i := range c.Events {
		e := &c.Events[i]
		if e.Type != domain.EventUptakeReported {
			continue
		}
		id, ok := RecipeOf(e.Source)
		if !ok {
			continue
		}
		all = append(all, id)
		if e.Action == "" {
			continue
		}
		recorded = true
		r := domain.RecipeReport{ID: id, Action: e.Action, Arguments: recipe.Arguments(e.Arguments)}
		if study, ok := r.Study(); ok && study == ref {
			named = append(named, id)
		}
	}
	ids := all
	if recorded {
		ids = named
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// recipeSourcePrefix starts every recipe source key (domain.RecipeSource).
const recipeSourcePrefix = "normandy/recipe/"

// RecipeOf returns the recipe id of a normandy/recipe/<id> source key.
func RecipeOf(source string) (domain.RecipeID, bool) {
	rest, ok := strings.CutPrefix(source, recipeSourcePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, false
	}
	return domain.RecipeID(n), true
}

// Merge adds o's counts to b: counts are sums, times a min and a max, the candidate
// recipes an intersection, so buckets folded from disjoint ranges of the log merge to
// the bucket of their union. The action of the later range wins.
func (b *StudyBucket) Merge(o *StudyBucket) {
	if b.Object == "" {
		b.Object, b.Key, b.Period, b.Start = o.Object, o.Key, o.Period, o.Start
	}
	if !o.First.IsZero() && (b.First.IsZero() || o.First.Before(b.First)) {
		b.First = o.First
	}
	if o.Last.After(b.Last) {
		b.Last = o.Last
	}
	if o.Action != "" && (o.Seq >= b.Seq || b.Action == "") {
		b.Action = o.Action
	}
	b.Seq = max(b.Seq, o.Seq)
	b.Enrolled += o.Enrolled
	for name, a := range o.Branches {
		if b.Branches == nil {
			b.Branches = make(map[string]BranchActivity, len(o.Branches))
		}
		have := b.Branches[name]
		have.Enrolled += a.Enrolled
		have.Unenrolled += a.Unenrolled
		have.EnrollFailed += a.EnrollFailed
		b.Branches[name] = have
	}
	mergeCounts(&b.Unenrolled, o.Unenrolled)
	mergeCounts(&b.EnrollFailed, o.EnrollFailed)
	b.narrowRecipes(o.Recipes, o.RecipeEvents)
}

// isTimelineEvent reports whether e counts in a study's timeline: enrollments, ends and
// failed starts of a study (not later Firefox's other study events, nor rollouts').
func isTimelineEvent(e *domain.Event) bool {
	switch e.Type {
	case domain.EventEnrolled, domain.EventUnenrolled, domain.EventEnrollFailed:
		return IsStudyEvent(e)
	}
	return false
}

// EachStudyBucket calls fn with the two keys (hour and day) of every study event in
// c. It is the timeline's only knowledge of commits, shared by StudyTimeline and the
// projector, which applies each key under its own stamp.
//
// A commit whose time RFC 3339 cannot write (CheckTime) has no buckets: they would be
// views nobody can render. Its events still count in the study views.
func EachStudyBucket(c *eventstore.Commit, fn func(k StudyBucketKey, e *domain.Event)) {
	if CheckTime(c) != nil {
		return
	}
	var hour, day int64
	timed := false
	for i := range c.Events {
		e := &c.Events[i]
		if !isTimelineEvent(e) {
			continue
		}
		if !timed {
			sec := c.At.Unix()
			hour = floorDiv(sec, secondsPerHour) * secondsPerHour
			day = floorDiv(sec, secondsPerDay) * secondsPerDay
			timed = true
		}
		ref := e.Study()
		fn(StudyBucketKey{Study: ref, Period: PeriodHour, Start: hour}, e)
		fn(StudyBucketKey{Study: ref, Period: PeriodDay, Start: day}, e)
	}
}

// StudyTimeline is every study's activity per UTC hour and day. The zero value is not
// usable; call NewStudyTimeline.
type StudyTimeline struct {
	// Seq is the position of the last commit folded; commits at or below it are ignored.
	Seq     uint64
	Buckets map[StudyBucketKey]*StudyBucket
}

// NewStudyTimeline returns an empty timeline.
func NewStudyTimeline() *StudyTimeline {
	return &StudyTimeline{Buckets: make(map[StudyBucketKey]*StudyBucket)}
}

// Apply folds the commit at position pos, unless the timeline already reflects it. It
// reports whether it folded the commit.
func (t *StudyTimeline) Apply(pos uint64, c *eventstore.Commit) bool {
	if pos <= t.Seq {
		return false
	}
	t.Seq = pos
	EachStudyBucket(c, func(k StudyBucketKey, e *domain.Event) {
		b := t.Bucket(k)
		b.Apply(c, e)
		b.Seq = pos
	})
	return true
}

// Bucket returns the bucket of k, creating an empty one.
func (t *StudyTimeline) Bucket(k StudyBucketKey) *StudyBucket {
	b, ok := t.Buckets[k]
	if !ok {
		b = newStudyBucket(k)
		t.Buckets[k] = b
	}
	return b
}

// Merge adds o's buckets to t (see StudyBucket.Merge).
func (t *StudyTimeline) Merge(o *StudyTimeline) {
	for k, b := range o.Buckets {
		t.Bucket(k).Merge(b)
	}
	t.Seq = max(t.Seq, o.Seq)
}
