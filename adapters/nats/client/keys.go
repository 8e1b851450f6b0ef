package client

import (
	"encoding/base64"
	"strings"
	"time"

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
//	studyd_study_time hour.<YYYYMMDDHH>.<object>.<key>  one study's activity in one UTC hour
//	                 day.<YYYYMMDD>.<object>.<key>     the same, for one UTC day
//	studyd_rollouts  <slug>                            one preference rollout's view
//	studyd_projection checkpoint                       the last flushed sequence
//	studyd_projection_lease projector                  the single-writer lease
//
// So `nats kv watch studyd_uptake 'runner.>'` follows the runner's totals,
// `'hour.2018071412.>'` everything of one hour, `'day.*.recipe.42.>'` one recipe by day;
// `nats kv watch studyd_study_time 'day.*.preference_study.pref-flip-1'` one study by day;
// `nats kv watch studyd_rollouts` every rollout's state.
// Every value is JSON carrying "seq", the stream sequence it reflects.
const (
	StudiesBucket    = "studyd_studies"
	UptakeBucket     = "studyd_uptake"
	StudyTimeBucket  = "studyd_study_time"
	RolloutsBucket   = "studyd_rollouts"
	ProjectionBucket = "studyd_projection"
	LeaseBucket      = "studyd_projection_lease"

	CheckpointKey = "checkpoint"
	LeaseKey      = "projector"
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

// RolloutKey is the studyd_rollouts key of rollout slug.
func RolloutKey(slug string) string { return kvToken(slug) }

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

// NewUptakeValue renders tally k with count n at seq.
func NewUptakeValue(k projections.UptakeKey, n, seq uint64) UptakeValue {
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

// StudyTimeKey is the studyd_study_time key of bucket k.
func StudyTimeKey(k projections.StudyBucketKey) string {
	return periodToken(k.Period, k.Start) + "." + StudyKey(k.Study)
}

// StudyTimePattern selects the studyd_study_time keys of period (hour or day), of study
// ref or, when ref is nil, of every study.
func StudyTimePattern(period projections.Period, ref *domain.StudyRef) string {
	if ref == nil {
		return period.String() + ".>"
	}
	return period.String() + ".*." + StudyKey(*ref)
}

// periodToken is the first two tokens of an hour or day key.
func periodToken(p projections.Period, start int64) string {
	t := time.Unix(start, 0).UTC()
	if p == projections.PeriodHour {
		return "hour." + t.Format("2006010215")
	}
	return "day." + t.Format("20060102")
}

// UptakeSourcePattern selects the studyd_uptake keys of one source (e.g.
// normandy/recipe/42) over period: its totals, or its hour or day buckets.
func UptakeSourcePattern(period projections.Period, source string) string {
	key := UptakeKey(projections.UptakeKey{Source: source, Status: "S"})
	prefix := strings.TrimSuffix(key, ".S")
	switch period {
	case projections.PeriodHour:
		return "hour.*." + prefix + ".*"
	case projections.PeriodDay:
		return "day.*." + prefix + ".*"
	}
	return prefix + ".*"
}
