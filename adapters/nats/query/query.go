package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/internal/inflight"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/internal/buildinfo"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/wire"
)

// uptakeTotalFilters select every total key of studyd_uptake.
var uptakeTotalFilters = []string{"runner.>", "action.>", "recipe.>", "other.>"}

// DefaultMinSeqWait bounds how long a query waits for the views to reach its min_seq.
const DefaultMinSeqWait = 2 * time.Second

// QueryInFlight bounds the query requests one instance serves at once; more are
// answered 503 at once.
const QueryInFlight = 512

// QueryConfig tunes the query service. The zero value is usable.
type QueryConfig struct {
	MinSeqWait time.Duration // default DefaultMinSeqWait
}

// QueryService serves the query endpoints. Study and uptake answers come from the KV
// views; client answers from the store's latest commit of the client (one direct get,
// always current).
type QueryService struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store eventstore.Store
	cfg   QueryConfig
	ready chan struct{}
	once  sync.Once // closes ready
}

// NewQueryService returns a query service on nc. It does no I/O: Run serves.
func NewQueryService(nc *nats.Conn, js jetstream.JetStream, store eventstore.Store, cfg QueryConfig) *QueryService {
	if cfg.MinSeqWait <= 0 {
		cfg.MinSeqWait = DefaultMinSeqWait
	}
	return &QueryService{nc: nc, js: js, store: store, cfg: cfg, ready: make(chan struct{})}
}

// Ready is closed once the endpoints answer.
func (s *QueryService) Ready() <-chan struct{} { return s.ready }

// Run opens the view buckets and serves the endpoints until ctx is done, then stops
// serving and returns. An error means the service could not start or stop cleanly.
func (s *QueryService) Run(ctx context.Context) error {
	q := &queries{js: s.js, store: s.store, cfg: s.cfg}
	var err error
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&q.uptake, client.UptakeBucket}, {&q.studies, client.StudiesBucket}, {&q.proj, client.ProjectionBucket}} {
		if *b.kv, err = client.OpenViewBucket(ctx, s.js, b.name, 1); err != nil {
			return fmt.Errorf("query service: %w", err)
		}
	}
	svc, err := micro.AddService(s.nc, micro.Config{Name: client.QueryService, Version: buildinfo.SemVer(),
		Description: "studyd projections: study views, uptake tallies, client enrollments", QueueGroup: client.QueryService})
	if err != nil {
		return fmt.Errorf("query service: %w", err)
	}
	// Each request runs on its own goroutine (at most QueryInFlight), so one waiting for
	// min_seq never delays another; its work is bounded, and ends when the service stops.
	in := inflight.New(QueryInFlight)
	serve := func(h func(context.Context, micro.Request)) micro.HandlerFunc {
		return func(req micro.Request) {
			in.Serve(req, func(req micro.Request) {
				rctx, cancel := context.WithTimeout(ctx, s.cfg.MinSeqWait+5*time.Second)
				defer cancel()
				h(rctx, req)
			})
		}
	}
	g := svc.AddGroup("studyd.query")
	for name, h := range map[string]micro.HandlerFunc{"study": serve(q.study), "uptake": serve(q.uptakeQuery), "client": serve(q.client)} {
		if err := g.AddEndpoint(name, h); err != nil {
			_ = svc.Stop()
			return fmt.Errorf("query service: endpoint %s: %w", name, err)
		}
	}
	// The server must know the subscriptions before we say we serve.
	if err := s.nc.Flush(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("query service: %w", err)
	}
	s.once.Do(func() { close(s.ready) })
	<-ctx.Done()
	err = svc.Stop()
	in.Wait()
	if err != nil {
		return fmt.Errorf("query service: stop: %w", err)
	}
	return nil
}

// queries answers the endpoints from the buckets Run opened.
type queries struct {
	js                    jetstream.JetStream
	store                 eventstore.Store
	cfg                   QueryConfig
	uptake, studies, proj jetstream.KeyValue
}

// decodeRequest reads a query's JSON body strictly: a misspelt field is an error that
// names it, not a silently empty query.
func decodeRequest(req micro.Request, v any) bool {
	if err := wire.CheckJSON(req.Data()); err != nil {
		_ = req.Error("400", fmt.Sprintf("request is not the endpoint's JSON (%T): %v", v, err), nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(req.Data()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		_ = req.Error("400", fmt.Sprintf("request is not the endpoint's JSON (%T): %v", v, err), nil)
		return false
	}
	return true
}

// respondJSON answers with v as JSON, or, if v cannot be written as JSON, with a 500
// saying why: a request is always answered.
func respondJSON(req micro.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		_ = req.Error("500", fmt.Sprintf("the answer cannot be written as JSON: %v", err), nil)
		return
	}
	_ = req.Respond(b)
}

func respondErr(req micro.Request, err error) {
	var qe *client.QueryError
	switch {
	case errors.As(err, &qe):
		_ = req.Error(qe.Code, qe.Description, nil)
	case errors.Is(err, domain.ErrInvalid):
		_ = req.Error("400", err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded):
		_ = req.Error("504", err.Error(), nil)
	default:
		_ = req.Error("500", err.Error(), nil)
	}
}

// waitSeq returns the checkpoint once it reaches minSeq, or a 504 QueryError after
// MinSeqWait.
func (q *queries) waitSeq(ctx context.Context, minSeq uint64) (uint64, error) {
	cp, _, err := client.LoadViewCheckpoint(ctx, q.proj, client.NearestEntry)
	if err != nil {
		return 0, err
	}
	if cp.Seq >= minSeq {
		return cp.Seq, nil
	}
	wctx, cancel := context.WithTimeout(ctx, q.cfg.MinSeqWait)
	defer cancel()
	w, err := q.proj.Watch(wctx, client.CheckpointKey, jetstream.IgnoreDeletes())
	if err != nil {
		return 0, fmt.Errorf("wait for seq %d: %w", minSeq, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return 0, fmt.Errorf("wait for seq %d: watcher closed", minSeq)
			}
			if e == nil {
				continue
			}
			var c client.ViewCheckpoint
			if json.Unmarshal(e.Value(), &c) == nil && c.Seq > cp.Seq {
				cp = c
			}
			if cp.Seq >= minSeq {
				return cp.Seq, nil
			}
		case <-wctx.Done():
			return 0, &client.QueryError{Code: "504", Description: fmt.Sprintf(
				"views reflect seq %d, not yet min_seq %d after waiting %s (is a projector running?)", cp.Seq, minSeq, q.cfg.MinSeqWait)}
		}
	}
}

func (q *queries) study(ctx context.Context, req micro.Request) {
	var r client.StudyRequest
	if !decodeRequest(req, &r) {
		return
	}
	ref := domain.StudyRef{Object: r.Object, Key: r.Key}
	if err := ref.Validate(); err != nil {
		respondErr(req, err)
		return
	}
	// The checkpoint first: a key read after it reflects at least the checkpoint.
	cp, err := q.waitSeq(ctx, r.MinSeq)
	if err != nil {
		respondErr(req, err)
		return
	}
	e, err := q.studies.Get(ctx, client.StudyKey(ref))
	if errors.Is(err, jetstream.ErrKeyNotFound) { // Get reports a deleted key so too
		respondErr(req, &client.QueryError{Code: "404", Description: fmt.Sprintf("no events for study %s in the log up to seq %d", ref, cp)})
		return
	}
	if err != nil {
		respondErr(req, fmt.Errorf("get study %s: %w", ref, err))
		return
	}
	var resp client.StudyResponse
	if err := json.Unmarshal(e.Value(), &resp.View); err != nil {
		respondErr(req, fmt.Errorf("decode study %s: %w", ref, err))
		return
	}
	resp.Seq = max(cp, resp.View.Seq)
	respondJSON(req, resp)
}

func (q *queries) uptakeQuery(ctx context.Context, req micro.Request) {
	var r client.UptakeRequest
	if len(req.Data()) > 0 && !decodeRequest(req, &r) {
		return
	}
	period, err := projections.ParsePeriod(r.Period)
	if err != nil {
		respondErr(req, err)
		return
	}
	cp, err := q.waitSeq(ctx, r.MinSeq)
	if err != nil {
		respondErr(req, err)
		return
	}
	filters := uptakeTotalFilters
	bucket := "*"
	if r.Bucket != "" {
		if strings.ContainsAny(r.Bucket, ".> ") {
			respondErr(req, &client.QueryError{Code: "400", Description: fmt.Sprintf(
				"bucket %q is not one key token (want e.g. 2018071412 for an hour, 20180714 for a day)", r.Bucket)})
			return
		}
		bucket = r.Bucket
	}
	switch period {
	case projections.PeriodHour:
		filters = []string{"hour." + bucket + ".>"}
	case projections.PeriodDay:
		filters = []string{"day." + bucket + ".>"}
	}
	resp := client.UptakeResponse{Seq: cp, Rows: []client.UptakeValue{}, Health: map[string]projections.HealthCounts{}}
	for _, f := range filters {
		err := client.EachValue(ctx, q.js, client.UptakeBucket, f, func(_ string, b []byte) error {
			var v client.UptakeValue
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			if !strings.HasPrefix(v.Source, r.Source) {
				return nil
			}
			resp.Rows = append(resp.Rows, v)
			h := resp.Health[v.Source]
			h.Add(v.Status, v.Count)
			resp.Health[v.Source] = h
			resp.Seq = max(resp.Seq, v.Seq)
			return nil
		})
		if err != nil {
			respondErr(req, err)
			return
		}
	}
	sort.Slice(resp.Rows, func(i, j int) bool {
		a, b := resp.Rows[i], resp.Rows[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.Status < b.Status
	})
	respondJSON(req, resp)
}

// client answers from the store: every commit carries the client's whole state, so
// the latest commit is the current view and min_seq needs no wait (a commit returned
// to a writer is already readable by direct get).
func (q *queries) client(ctx context.Context, req micro.Request) {
	var r client.ClientRequest
	if !decodeRequest(req, &r) {
		return
	}
	if err := r.Client.Validate(); err != nil {
		respondErr(req, err)
		return
	}
	rec, err := q.store.Load(ctx, r.Client)
	if err != nil {
		respondErr(req, fmt.Errorf("load client %s: %w", r.Client, err))
		return
	}
	if rec.Position == 0 {
		respondErr(req, &client.QueryError{Code: "404", Description: fmt.Sprintf("client %s has no commits", r.Client)})
		return
	}
	v := projections.ClientViewOf(r.Client, rec)
	b, err := json.Marshal(client.ClientResponse{Seq: max(v.Seq, r.MinSeq), View: v})
	if err != nil {
		// E.g. a time RFC 3339 cannot write, in a commit older builds accepted: answer,
		// never leave the requester waiting.
		respondErr(req, &client.QueryError{Code: "422", Description: fmt.Sprintf("client %s at seq %d cannot be rendered as JSON: %v", r.Client, rec.Position, err)})
		return
	}
	_ = req.Respond(b)
}
