package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// studyd's NATS micro services. Each serves its endpoints in a queue group named after
// the service, so every studyd instance can answer and exactly one does; their version
// is the build's (internal/buildinfo).
const (
	SubmitService = "studyd-submit" // studyd.submit
	QueryService  = "studyd-query"  // studyd.query.*
	AdminService  = "studyd-admin"  // studyd.admin.rebuild, on the leading projector
)

// Query endpoints (NATS micro service QueryService).
const (
	QueryStudySubject  = "studyd.query.study"
	QueryUptakeSubject = "studyd.query.uptake"
	QueryClientSubject = "studyd.query.client"
)

// StudyRequest asks for one study's view. MinSeq (e.g. the seq of a command's Outcome)
// makes the query wait, briefly, until the view reflects at least that sequence.
type StudyRequest struct {
	Object domain.Object `json:"object"`
	Key    string        `json:"key"`
	MinSeq uint64        `json:"min_seq,omitempty"`
}

// StudyResponse is a study's view and the sequence it reflects at least.
type StudyResponse struct {
	Seq  uint64                `json:"seq"`
	View projections.StudyView `json:"view"`
}

// UptakeRequest asks for uptake tallies: the sources starting with Source (e.g.
// "normandy/action/"; empty = all), over Period (total, hour or day; default total).
//
// Bucket narrows an hour or day query to buckets whose key token matches it:
// "2018071412" (one hour), "20180714" (one day), or with NATS wildcards ("*").
type UptakeRequest struct {
	Source string `json:"source,omitempty"`
	Period string `json:"period,omitempty"`
	Bucket string `json:"bucket,omitempty"`
	MinSeq uint64 `json:"min_seq,omitempty"`
}

// UptakeResponse lists the matching tallies sorted by source, bucket and status, with
// the health of each source's totals over the rows returned.
type UptakeResponse struct {
	Seq    uint64                              `json:"seq"`
	Rows   []UptakeValue                       `json:"rows"`
	Health map[string]projections.HealthCounts `json:"health"`
}

// ClientRequest asks for one client's enrollments.
type ClientRequest struct {
	Client domain.ClientID `json:"client_id"` // named as in commands
	MinSeq uint64          `json:"min_seq,omitempty"`
}

// ClientResponse is a client's view, read from its latest commit.
type ClientResponse struct {
	Seq  uint64                 `json:"seq"`
	View projections.ClientView `json:"view"`
}

// QueryStudy asks studyd for a study's view.
func QueryStudy(ctx context.Context, nc *nats.Conn, r StudyRequest) (StudyResponse, error) {
	var out StudyResponse
	return out, request(ctx, nc, QueryStudySubject, r, &out)
}

// QueryUptake asks studyd for uptake tallies.
func QueryUptake(ctx context.Context, nc *nats.Conn, r UptakeRequest) (UptakeResponse, error) {
	var out UptakeResponse
	return out, request(ctx, nc, QueryUptakeSubject, r, &out)
}

// QueryClient asks studyd for a client's enrollments.
func QueryClient(ctx context.Context, nc *nats.Conn, r ClientRequest) (ClientResponse, error) {
	var out ClientResponse
	return out, request(ctx, nc, QueryClientSubject, r, &out)
}

// WatchUpdate is one change of a watched view key.
type WatchUpdate struct {
	Bucket   string          `json:"bucket"`
	Key      string          `json:"key"`
	Revision uint64          `json:"revision"`
	Op       string          `json:"op"` // put, delete or purge
	Value    json.RawMessage `json:"value,omitempty"`
}

// ViewBucket returns the bucket name for "studies" or "uptake".
func ViewBucket(name string) (string, error) {
	switch name {
	case "studies", "study", StudiesBucket:
		return StudiesBucket, nil
	case "uptake", UptakeBucket:
		return UptakeBucket, nil
	case "rollouts", "rollout", RolloutsBucket:
		return RolloutsBucket, nil
	}
	return "", fmt.Errorf("%w: unknown view %q (allowed: studies, uptake, rollouts)", domain.ErrInvalid, name)
}

// WatchView calls fn for the current value of every key of bucket matching pattern
// (">" for all), then for every change, until ctx is done (nil) or fn fails. With
// updatesOnly it skips the current values. It is what `studyctl watch` runs; `nats kv
// watch <bucket> <pattern>` shows the same values.
func WatchView(ctx context.Context, nc *nats.Conn, bucket, pattern string, updatesOnly bool, fn func(WatchUpdate) error) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucket, err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucket, err)
	}
	var opts []jetstream.WatchOpt
	if updatesOnly {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	if pattern == "" {
		pattern = ">"
	}
	w, err := kv.Watch(ctx, pattern, opts...)
	if err != nil {
		return fmt.Errorf("watch %s %s: %w", bucket, pattern, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				continue
			}
			u := WatchUpdate{Bucket: bucket, Key: e.Key(), Revision: e.Revision(), Op: strings.ToLower(e.Operation().String())}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				u.Op = "put"
				if json.Valid(e.Value()) {
					u.Value = e.Value()
				} else {
					u.Value, _ = json.Marshal(string(e.Value()))
				}
			case jetstream.KeyValueDelete:
				u.Op = "delete"
			case jetstream.KeyValuePurge:
				u.Op = "purge"
			}
			if err := fn(u); err != nil {
				return err
			}
		}
	}
}
