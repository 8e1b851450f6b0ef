package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// LiveUptake is one tally as the live studyd_uptake bucket holds it.
type LiveUptake struct {
	Key   projections.UptakeKey
	Count uint64
	Seq   uint64 // the stream sequence the value reflects
}

// LiveViews is the live materialised views as read back from KV: every value carries
// the stream sequence it reflects, and the checkpoint says all reflect at least it.
type LiveViews struct {
	Checkpoint uint64
	// Head is the log's last commit sequence when the views were read (0: unknown);
	// views reflecting less are behind.
	Head    uint64
	Studies []projections.StudyView
	Uptake  []LiveUptake
	// Timeline is the studyd_study_time bucket: every study's hour and day buckets.
	Timeline []projections.StudyBucket
	// Rollouts is the studyd_rollouts bucket: every preference rollout's view.
	Rollouts []projections.RolloutView
}

// ViewMismatch is one key whose live value differs from the fold of the log.
type ViewMismatch struct {
	Key  string `json:"key"`
	Seq  uint64 `json:"seq"`  // the sequence the live value claims to reflect
	Live string `json:"live"` // canonical JSON, "" if the key is missing
	Fold string `json:"fold"` // canonical JSON, "" if the fold has no such key
}

func (m ViewMismatch) String() string {
	switch {
	case m.Live == "":
		return fmt.Sprintf("view %s is missing from KV; the fold of the log has %s", m.Key, m.Fold)
	case m.Fold == "":
		return fmt.Sprintf("view %s is in KV (%s at seq %d) but the fold of the log has no such key", m.Key, m.Live, m.Seq)
	}
	return fmt.Sprintf("view %s at seq %d is %s in KV, but the fold of the log to seq %d gives %s", m.Key, m.Seq, m.Live, m.Seq, m.Fold)
}

// ViewResult is the comparison of the live views with the fold of the log.
type ViewResult struct {
	Checkpoint uint64         `json:"checkpoint"` // the projector's checkpoint
	Reflects   uint64         `json:"reflects"`   // the newest sequence the views reflect: the checkpoint or a later key's
	Head       uint64         `json:"head"`       // the log's last commit when the views were read (0: unknown)
	FoldedTo   uint64         `json:"folded_to"`  // the last sequence folded
	Keys       int            `json:"keys"`
	LiveDigest string         `json:"live_digest"`
	FoldDigest string         `json:"fold_digest"`
	Mismatches []ViewMismatch `json:"mismatches,omitempty"`
}

// Equal reports whether the digests agree.
func (r ViewResult) Equal() bool { return r.LiveDigest == r.FoldDigest }

// Behind reports whether the views reflect less than the log held when they were read.
func (r ViewResult) Behind() bool { return r.Head > r.Reflects }

// liveKey is one key to compare: its canonical line, and where to take the fold's.
type liveKey struct {
	name   string
	seq    uint64
	line   []byte // canonical live value
	study  domain.StudyRef
	tally  projections.UptakeKey
	bucket projections.StudyBucketKey
	slug   string
	kind   keyKind
}

// keyKind is the view a live key belongs to.
type keyKind uint8

const (
	kindUptake keyKind = iota
	kindStudy
	kindBucket
	kindRollout
)

// ViewCheck proves that a fold of the log equals the live views. Each live key is
// compared with the fold of the log up to the sequence that key says it reflects, so a
// projector ahead of its checkpoint (keys flushed, checkpoint not yet) or keys not
// touched for a while compare exactly, and keys the fold has at the checkpoint but KV
// lacks are reported too. Feed it every commit from sequence 1 in order (Apply), up
// to Target.
type ViewCheck struct {
	checkpoint uint64
	head       uint64
	keys       []liveKey // by seq
	next       int
	fold       map[string][]byte
	uptake     *projections.Uptake
	studies    *projections.Studies
	timeline   *projections.StudyTimeline
	rollouts   *projections.Rollouts
	lastPos    uint64
}

// NewViewCheck prepares the comparison with live.
func NewViewCheck(live LiveViews) *ViewCheck {
	v := &ViewCheck{checkpoint: live.Checkpoint, head: live.Head, fold: make(map[string][]byte),
		uptake: projections.NewUptake(), studies: projections.NewStudies(), timeline: projections.NewStudyTimeline(),
		rollouts: projections.NewRollouts()}
	for _, s := range live.Studies {
		seq := s.Seq
		s.Seq = 0
		v.keys = append(v.keys, liveKey{name: studyName(s.Study()), seq: seq, line: canonical(s), study: s.Study(), kind: kindStudy})
	}
	for _, u := range live.Uptake {
		v.keys = append(v.keys, liveKey{name: tallyName(u.Key), seq: u.Seq, line: []byte(strconv.FormatUint(u.Count, 10)), tally: u.Key})
	}
	for _, b := range live.Timeline {
		seq := b.Seq
		b.Seq = 0
		k := b.BucketKey()
		v.keys = append(v.keys, liveKey{name: bucketName(k), seq: seq, line: canonical(b), bucket: k, kind: kindBucket})
	}
	for _, r := range live.Rollouts {
		seq := r.Seq
		r.Seq = 0
		v.keys = append(v.keys, liveKey{name: rolloutName(r.Slug), seq: seq, line: canonical(r), slug: r.Slug, kind: kindRollout})
	}
	slices.SortFunc(v.keys, func(a, b liveKey) int {
		if a.seq != b.seq {
			return cmpU(a.seq, b.seq)
		}
		return bytes.Compare([]byte(a.name), []byte(b.name))
	})
	return v
}

// Target is the sequence the log must be folded to: the checkpoint, or the newest
// sequence any key claims if that is later.
func (v *ViewCheck) Target() uint64 {
	t := v.checkpoint
	if n := len(v.keys); n > 0 {
		t = max(t, v.keys[n-1].seq)
	}
	return t
}

// Apply folds the commit at pos; commits beyond Target are ignored.
func (v *ViewCheck) Apply(pos uint64, c *eventstore.Commit) {
	if pos > v.Target() {
		return
	}
	v.snapshotBefore(pos)
	v.uptake.Apply(pos, c)
	v.studies.Apply(pos, c)
	v.timeline.Apply(pos, c)
	v.rollouts.Apply(pos, c)
	v.lastPos = pos
}

// snapshotBefore records the fold's value of every key that reflects a sequence before
// pos: the fold so far is the log up to that sequence.
func (v *ViewCheck) snapshotBefore(pos uint64) {
	for v.next < len(v.keys) && v.keys[v.next].seq < pos {
		v.snapshot(&v.keys[v.next])
		v.next++
	}
}

func (v *ViewCheck) snapshot(k *liveKey) {
	switch k.kind {
	case kindStudy:
		if sv, ok := v.studies.Views[k.study]; ok {
			c := *sv
			c.Seq = 0
			v.fold[k.name] = canonical(c)
		}
		return
	case kindBucket:
		if b, ok := v.timeline.Buckets[k.bucket]; ok {
			c := *b
			c.Seq = 0
			v.fold[k.name] = canonical(c)
		}
		return
	case kindRollout:
		if r, ok := v.rollouts.Views[k.slug]; ok {
			c := *r
			c.Seq = 0
			v.fold[k.name] = canonical(c)
		}
		return
	}
	if n, ok := v.uptake.Counts[k.tally]; ok {
		v.fold[k.name] = []byte(strconv.FormatUint(n, 10))
	}
}

// Finish compares. lastSeq is the log's last sequence seen: keys claiming a later
// sequence are ahead of the log itself.
func (v *ViewCheck) Finish(lastSeq uint64) ViewResult {
	res := ViewResult{Checkpoint: v.checkpoint, Reflects: v.Target(), Head: v.head, FoldedTo: v.lastPos, Keys: len(v.keys)}
	live := make(map[string]liveKey, len(v.keys))
	for i := v.next; i < len(v.keys); i++ {
		if v.keys[i].seq <= lastSeq {
			v.snapshot(&v.keys[i])
		}
	}
	for _, k := range v.keys {
		live[k.name] = k
	}
	// Keys the fold has at the checkpoint but KV lacks. (The fold may have run past the
	// checkpoint; a key first created after it is allowed to be missing.)
	atCheckpoint := v.checkpoint >= v.lastPos
	missing := func(name string, seq uint64, value func() []byte) {
		if _, ok := live[name]; !ok && (atCheckpoint || seq <= v.checkpoint) {
			v.fold[name] = value()
			live[name] = liveKey{name: name, seq: v.checkpoint}
		}
	}
	for ref, sv := range v.studies.Views {
		missing(studyName(ref), sv.Seq, func() []byte { c := *sv; c.Seq = 0; return canonical(c) })
	}
	for k, b := range v.timeline.Buckets {
		missing(bucketName(k), b.Seq, func() []byte { c := *b; c.Seq = 0; return canonical(c) })
	}
	for slug, r := range v.rollouts.Views {
		missing(rolloutName(slug), r.Seq, func() []byte { c := *r; c.Seq = 0; return canonical(c) })
	}
	if atCheckpoint { // tallies carry no stamp of their own
		for k, n := range v.uptake.Counts {
			missing(tallyName(k), v.checkpoint, func() []byte { return []byte(strconv.FormatUint(n, 10)) })
		}
	}
	names := make([]string, 0, len(live))
	for n := range live {
		names = append(names, n)
	}
	slices.Sort(names)
	lh, fh := sha256.New(), sha256.New()
	for _, n := range names {
		k := live[n]
		f := v.fold[n]
		writeLine(lh, n, k.line)
		writeLine(fh, n, f)
		if !bytes.Equal(k.line, f) {
			m := ViewMismatch{Key: n, Seq: k.seq, Live: string(k.line), Fold: string(f)}
			if k.seq > lastSeq {
				m.Fold = fmt.Sprintf("(nothing: the log ends at seq %d)", lastSeq)
			}
			res.Mismatches = append(res.Mismatches, m)
		}
	}
	res.LiveDigest = hex.EncodeToString(lh.Sum(nil))
	res.FoldDigest = hex.EncodeToString(fh.Sum(nil))
	return res
}

type hashWriter interface{ Write([]byte) (int, error) }

func writeLine(h hashWriter, name string, value []byte) {
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(value)
	_, _ = h.Write([]byte{'\n'})
}

// canonical is v as JSON: struct fields in order, map keys sorted.
func canonical(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("!" + err.Error())
	}
	return b
}

func studyName(ref domain.StudyRef) string { return "study " + ref.String() }

func tallyName(k projections.UptakeKey) string {
	return "uptake " + k.Source + " " + string(k.Status) + " " + k.Period.String() + " " + strconv.FormatInt(k.Start, 10)
}

func bucketName(k projections.StudyBucketKey) string {
	return "study-time " + k.Study.String() + " " + k.Period.String() + " " + strconv.FormatInt(k.Start, 10)
}

func rolloutName(slug string) string { return "rollout " + slug }

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
