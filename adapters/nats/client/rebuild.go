package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// RebuildSubject is the micro endpoint the leading projector serves to rebuild the
// views: `studyctl rebuild` calls it.
const RebuildSubject = "studyd.admin.rebuild"

// RebuildProgress reports a rebuild's progress: phase "fold" counts commits folded of
// those in the log, "write" keys written of those to write.
type RebuildProgress struct {
	Phase string `json:"phase"`
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
}

// RebuildResult summarises a finished rebuild.
type RebuildResult struct {
	Seq        uint64 `json:"seq"`     // every view value is stamped with it, and the checkpoint set to it
	Commits    uint64 `json:"commits"` // commits folded
	UptakeKeys int    `json:"uptake_keys"`
	StudyKeys  int    `json:"study_keys"`
	// StudyTimeKeys is the studyd_study_time keys written.
	StudyTimeKeys int `json:"study_time_keys"`
	// RolloutKeys is the studyd_rollouts keys written.
	RolloutKeys int           `json:"rollout_keys"`
	Deleted     int           `json:"deleted"` // keys the log no longer produces
	Took        time.Duration `json:"took_ns"`
}

// RebuildRequest is the JSON request of RebuildSubject.
type RebuildRequest struct {
	// ProgressSubject, if set, receives RebuildProgress messages as JSON.
	ProgressSubject string `json:"progress_subject,omitempty"`
}

// RequestRebuild asks the leading projector to rebuild and waits for it, passing
// progress reports to progress (optional). ctx bounds the whole rebuild.
func RequestRebuild(ctx context.Context, nc *nats.Conn, progress func(RebuildProgress)) (RebuildResult, error) {
	var body RebuildRequest
	if progress != nil {
		// The projector publishes every progress report before its reply, on one
		// connection, so they are all in ch once the reply is in; the rest is drained
		// after it so that none is lost or reported late.
		body.ProgressSubject = nc.NewRespInbox()
		ch := make(chan *nats.Msg, 4096)
		sub, err := nc.ChanSubscribe(body.ProgressSubject, ch)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
		}
		report := func(m *nats.Msg) {
			var pr RebuildProgress
			if json.Unmarshal(m.Data, &pr) == nil {
				progress(pr)
			}
		}
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case m := <-ch:
					report(m)
				case <-stop:
					return
				}
			}
		}()
		defer func() {
			close(stop)
			<-stopped
			_ = sub.Unsubscribe()
			for {
				select {
				case m := <-ch:
					report(m)
				default:
					return
				}
			}
		}()
		if err := nc.Flush(); err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
		}
	}
	var res RebuildResult
	if err := request(ctx, nc, RebuildSubject, body, &res); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	return res, nil
}
