package natsadapter

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// KV buckets of the projections.
//
// Key scheme (every token is a domain token, A-Z a-z 0-9 _ -; anything else is written
// as "=" followed by its unpadded base64url, which no domain token can start with):
//
//	studyd_studies   <object>.<key>                    preference_study.<slug>, addon_study.<recipe id>
//	studyd_uptake    runner.<STATUS>                   totals of normandy/runner
//	                 action.<name>.<STATUS>            totals of normandy/action/<name>
//	                 recipe.<id>.<STATUS>              totals of normandy/recipe/<id>
//	                 hour.<YYYYMMDDHH>.<total key>     the same, for one UTC hour
//	                 day.<YYYYMMDD>.<total key>        the same, for one UTC day
//	studyd_projection checkpoint                       the last flushed sequence
//	studyd_projection_lease projector                  the single-writer lease
//
// So `nats kv watch studyd_uptake 'runner.>'` follows the runner's totals,
// `'hour.2018071412.>'` everything of one hour, `'day.*.recipe.42.>'` one recipe by day.
// Every value is JSON carrying "seq", the stream sequence it reflects.
const (
	StudiesBucket    = "studyd_studies"
	UptakeBucket     = "studyd_uptake"
	ProjectionBucket = "studyd_projection"
	LeaseBucket      = "studyd_projection_lease"

	checkpointKey = "checkpoint"
	leaseKey      = "projector"
)

// Errors of the projections' KV layer.
var (
	// ErrLeaseLost: another projector holds the single-writer lease, or wrote a key this
	// one thought it owned. The projector drops its state and competes again.
	ErrLeaseLost = errors.New("natsadapter: projector lease lost")
	// ErrUndecodable: a commit in the log could not be decoded; the projector stops
	// rather than silently skip it and publish a wrong view.
	ErrUndecodable = errors.New("natsadapter: undecodable commit in the log")
)

// kvToken returns v as one KV key token.
func kvToken(v string) string {
	if domain.ValidateToken("kv key", v) == nil {
		return v
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(v))
}

// StudyKey is the studyd_studies key of study ref.
func StudyKey(ref domain.StudyRef) string {
	return kvToken(string(ref.Object)) + "." + kvToken(ref.Key)
}

// UptakeKey is the studyd_uptake key of tally k.
func UptakeKey(k projections.UptakeKey) string {
	var b strings.Builder
	b.Grow(64)
	switch k.Period {
	case projections.PeriodHour:
		b.WriteString("hour.")
		b.WriteString(time.Unix(k.Start, 0).UTC().Format("2006010215"))
		b.WriteByte('.')
	case projections.PeriodDay:
		b.WriteString("day.")
		b.WriteString(time.Unix(k.Start, 0).UTC().Format("20060102"))
		b.WriteByte('.')
	}
	switch {
	case k.Source == domain.SourceRunner:
		b.WriteString("runner")
	case strings.HasPrefix(k.Source, "normandy/action/"):
		b.WriteString("action.")
		b.WriteString(kvToken(strings.TrimPrefix(k.Source, "normandy/action/")))
	case strings.HasPrefix(k.Source, "normandy/recipe/"):
		b.WriteString("recipe.")
		b.WriteString(kvToken(strings.TrimPrefix(k.Source, "normandy/recipe/")))
	default: // not a seed source; kept, under its own family, rather than dropped
		b.WriteString("other.")
		b.WriteString(kvToken(k.Source))
	}
	b.WriteByte('.')
	b.WriteString(kvToken(string(k.Status)))
	return b.String()
}

// uptakeTotalFilters select every total key of studyd_uptake.
var uptakeTotalFilters = []string{"runner.>", "action.>", "recipe.>", "other.>"}

// UptakeValue is the JSON value of one studyd_uptake key.
type UptakeValue struct {
	Source string              `json:"source"`
	Status domain.UptakeStatus `json:"status"`
	Label  string              `json:"label"`
	Health projections.Health  `json:"health"`
	Period string              `json:"period"`         // total, hour or day
	Start  time.Time           `json:"start,omitzero"` // the bucket's start (UTC); absent for a total
	Count  uint64              `json:"count"`          // reports in the period
	Seq    uint64              `json:"seq"`            // the stream sequence the count reflects
}

// uptakeValue renders tally k with count n at seq.
func uptakeValue(k projections.UptakeKey, n, seq uint64) UptakeValue {
	return UptakeValue{Source: k.Source, Status: k.Status, Label: k.Status.Label(), Health: k.Health(),
		Period: k.Period.String(), Start: k.BucketStart(), Count: n, Seq: seq}
}

// Key returns the tally the value counts.
func (v UptakeValue) Key() (projections.UptakeKey, error) {
	p, err := projections.ParsePeriod(v.Period)
	if err != nil {
		return projections.UptakeKey{}, err
	}
	k := projections.UptakeKey{Source: v.Source, Status: v.Status, Period: p}
	if p != projections.PeriodTotal {
		k.Start = v.Start.Unix()
	}
	return k, nil
}

// Checkpoint is the JSON value of studyd_projection's checkpoint key: every view key
// reflects at least Seq.
type Checkpoint struct {
	Seq    uint64 `json:"seq"`
	Holder string `json:"holder,omitempty"` // the projector that wrote it
}

// DefaultLeaseTTL is how long a projector's lease outlives its last renewal.
const DefaultLeaseTTL = 5 * time.Second

// viewBuckets creates (or opens) the projection buckets. The lease bucket's TTL is
// fixed when it is first created; later instances use the bucket as it is.
func viewBuckets(ctx context.Context, js jetstream.JetStream, replicas int, leaseTTL time.Duration) (uptake, studies, proj, lease jetstream.KeyValue, err error) {
	open := func(cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		cfg.Replicas = max(replicas, 1)
		kv, err := js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
		if err != nil {
			return nil, fmt.Errorf("open kv bucket %s: %w", cfg.Bucket, err)
		}
		return kv, nil
	}
	if uptake, err = open(jetstream.KeyValueConfig{Bucket: UptakeBucket, Description: "studyd uptake tallies", Storage: jetstream.FileStorage}); err != nil {
		return
	}
	if studies, err = open(jetstream.KeyValueConfig{Bucket: StudiesBucket, Description: "studyd study views", Storage: jetstream.FileStorage}); err != nil {
		return
	}
	if proj, err = open(jetstream.KeyValueConfig{Bucket: ProjectionBucket, Description: "studyd projector checkpoint", Storage: jetstream.FileStorage}); err != nil {
		return
	}
	lease, err = open(jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "studyd projector single-writer lease",
		Storage: jetstream.MemoryStorage, TTL: leaseTTL})
	return
}

// keyEntry is a key's latest value and revision. A key that never existed has
// revision 0; a deleted one has its marker's revision and no value.
type keyEntry struct {
	value []byte
	rev   uint64
}

// entryGetter reads a key's latest entry.
type entryGetter func(ctx context.Context, kv jetstream.KeyValue, key string) (keyEntry, error)

// nearestEntry reads a key with KeyValue.Get: a direct get, answered by the nearest
// replica, which may trail the leader by a little. Right for readers, not for a
// compare-and-set: Get reports a deleted key as missing, revision 0.
func nearestEntry(ctx context.Context, kv jetstream.KeyValue, key string) (keyEntry, error) {
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return keyEntry{}, nil
	case err != nil:
		return keyEntry{}, err
	}
	return keyEntry{value: e.Value(), rev: e.Revision()}, nil
}

// leaderEntry reads a view key from its bucket's stream leader: the revision a
// compare-and-set write must name. KeyValue.Get is a direct get, answered by a replica
// (NATS prefers one on the client's own server) that may trail the leader; every write
// based on its stale revision would fail and restart the term, for as long as that
// replica lagged.
func (p *Projector) leaderEntry(ctx context.Context, kv jetstream.KeyValue, key string) (keyEntry, error) {
	m, err := leaderGet(ctx, p.js.Conn(), "KV_"+kv.Bucket(), "$KV."+kv.Bucket()+"."+key)
	if err != nil || m.Seq == 0 {
		return keyEntry{}, err
	}
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return keyEntry{}, fmt.Errorf("%s %s: headers: %w", kv.Bucket(), key, err)
		}
		if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return keyEntry{rev: m.Seq}, nil
		}
	}
	return keyEntry{value: m.Data, rev: m.Seq}, nil
}

// storedMsg is a stream message as the JetStream API's message get returns it.
type storedMsg struct {
	Seq    uint64 `json:"seq"`
	Header []byte `json:"hdrs"`
	Data   []byte `json:"data"`
}

// leaderGet fetches the last message on subject (wildcards allowed) from the stream's
// leader, with a plain message get rather than a direct get, which any replica may
// answer from behind. No such message is a zero storedMsg.
func leaderGet(ctx context.Context, nc *nats.Conn, stream, subject string) (storedMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return storedMsg{}, err
	}
	var resp struct {
		Message *storedMsg          `json:"message"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("message get on %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return storedMsg{}, nil
	case resp.Error != nil:
		return storedMsg{}, fmt.Errorf("message get on %s: %w", stream, resp.Error)
	case resp.Message == nil:
		return storedMsg{}, fmt.Errorf("message get on %s: empty answer", stream)
	}
	return *resp.Message, nil
}

// kvWrite is one compare-and-set write of a view key.
type kvWrite struct {
	bucket jetstream.KeyValue
	key    string
	value  []byte
	rev    uint64 // the revision the writer last saw; 0 = the key must not exist
	del    bool   // write a delete marker instead of a value
	done   func(newRev uint64)
}

// writeAll publishes every write concurrently (async publishes with the expected
// last-subject-sequence header, i.e. KeyValue.Update pipelined) and waits for all the
// acks. A revision mismatch on any key means another writer touched it: ErrLeaseLost.
// Keys whose write succeeded get their new revision through done. Acks not back
// within timeout fail the batch: a write may still land later, which the stamps on
// the keys make harmless to whoever folds next.
func writeAll(ctx context.Context, js jetstream.JetStream, writes []kvWrite, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(writes))
	for i := range writes {
		w := &writes[i]
		m := nats.NewMsg("$KV." + w.bucket.Bucket() + "." + w.key)
		m.Data = w.value
		if w.del {
			m.Header.Set("KV-Operation", "DEL")
		}
		f, err := js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(w.rev))
		if err != nil {
			return fmt.Errorf("write %s %s: %w", w.bucket.Bucket(), w.key, err)
		}
		futures = append(futures, f)
	}
	var first error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if writes[i].done != nil {
				writes[i].done(ack.Sequence)
			}
		case err := <-f.Err():
			if isWrongLastSeq(err) {
				err = fmt.Errorf("%w: %s %s changed under us: %w", ErrLeaseLost, writes[i].bucket.Bucket(), writes[i].key, err)
			} else {
				err = fmt.Errorf("write %s %s: %w", writes[i].bucket.Bucket(), writes[i].key, err)
			}
			first = cmpErr(first, err)
		case <-ctx.Done():
			return fmt.Errorf("write views: %d of %d acks missing: %w", len(futures)-i, len(futures), ctx.Err())
		}
	}
	return first
}

func cmpErr(first, err error) error {
	if first == nil || (errors.Is(err, ErrLeaseLost) && !errors.Is(first, ErrLeaseLost)) {
		return err
	}
	return first
}

// isWrongLastSeq reports a compare-and-set failure (10071, or 10164 on replicated
// streams).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// ListStudyViews returns every materialised study view, sorted by object and key, so
// that a user can find what to ask for without knowing the slugs.
func ListStudyViews(ctx context.Context, js jetstream.JetStream) ([]projections.StudyView, error) {
	var views []projections.StudyView
	err := eachValue(ctx, js, StudiesBucket, ">", func(key string, b []byte) error {
		var v projections.StudyView
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("study view %s: %w", key, err)
		}
		views = append(views, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	slices.SortFunc(views, func(a, b projections.StudyView) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Key, b.Key))
	})
	return views, nil
}
