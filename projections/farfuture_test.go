package projections_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// Issue 12, case 3: a commit whose time RFC 3339 cannot write (a year-20983 run that
// older builds accepted) must not give the fold a key no view can render: the projector
// restarted for ever on it. It adds to the totals only, and CheckTime reports it.
func TestFarFutureCommitFoldsIntoRenderableKeys(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("x", -5*3600)), // year 10000 in UTC
	} {
		c := eventstore.Commit{Client: "c1", At: at, Events: []domain.Event{
			{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}}}
		if err := projections.CheckTime(&c); !errors.Is(err, projections.ErrUnrenderableTime) {
			t.Errorf("CheckTime(%s) = %v, want ErrUnrenderableTime", at, err)
		}
		u := projections.NewUptake()
		u.Apply(1, &c)
		if len(u.Counts) != 1 {
			t.Errorf("at %s: got keys %v, want the total only", at, u.Counts)
		}
		for k := range u.Counts {
			if _, err := json.Marshal(k.BucketStart()); err != nil {
				t.Errorf("at %s: key %+v cannot be rendered: %v", at, k, err)
			}
		}
	}
	studyEvent := eventstore.Commit{Client: "c1", At: time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC), Events: []domain.Event{
		{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "s", Slug: "s", Branch: "control",
			From: domain.StateNone, To: domain.StateEnrolled}}}
	projections.EachStudyBucket(&studyEvent, func(k projections.StudyBucketKey, _ *domain.Event) {
		t.Errorf("a year-20983 commit gave the timeline key %+v, which no view can render", k)
	})
	ok := eventstore.Commit{Client: "c1", At: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Events: []domain.Event{
		{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}}}
	u := projections.NewUptake()
	u.Apply(1, &ok)
	if err := projections.CheckTime(&ok); err != nil || len(u.Counts) != 3 {
		t.Errorf("9999-12-31: CheckTime %v, %d keys; want nil and 3", err, len(u.Counts))
	}
}
