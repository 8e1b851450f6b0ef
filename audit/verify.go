package audit

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// ErrFault is wrapped by every *Fault: the log failed verification.
var ErrFault = errors.New("audit: log verification failed")

// FaultKind names what is wrong.
type FaultKind string

// Fault kinds.
const (
	// FaultUndecodable: a message on a commit or rejection subject does not decode.
	FaultUndecodable FaultKind = "undecodable"
	// FaultSubject: a commit sits on another client's subject.
	FaultSubject FaultKind = "subject_mismatch"
	// FaultInvalidEvent: an event is not well formed for its type.
	FaultInvalidEvent FaultKind = "invalid_event"
	// FaultIllegalTransition: an event's from → to is not an edge of the state machine.
	FaultIllegalTransition FaultKind = "illegal_transition"
	// FaultState: an event's from is not the state the client's previous commit
	// recorded, or the commit's state disagrees with its events' to.
	FaultState FaultKind = "state_mismatch"
	// FaultChain: a commit's PrevHash is not the hash of the client's previous commit
	// (an edited, removed, reordered or inserted commit).
	FaultChain FaultKind = "chain_broken"
	// FaultCheckpoint: the log's running digest differs from a signed checkpoint, or
	// the log ends before a checkpoint's sequence.
	FaultCheckpoint FaultKind = "checkpoint_mismatch"
	// FaultSignature: a checkpoint's signature does not verify.
	FaultSignature FaultKind = "bad_signature"
	// FaultView: a live KV view differs from the fold of the log at its sequence.
	FaultView FaultKind = "view_mismatch"
	// FaultAuthorship: a commit or rejection does not carry a valid authentication
	// code of the commit key: studyd did not write it. A forged commit takes no part
	// in the other checks (its client's chain and state continue from the last
	// authentic commit), just as studyd never decides a command on one.
	FaultAuthorship FaultKind = "not_authentic"
	// FaultTime: a commit's time is outside what RFC 3339 can write; views fold it
	// into their totals only, and exports skip it (projections.CheckTime).
	FaultTime FaultKind = "time_out_of_range"
	// FaultViewsBehind: the live views reflect an earlier sequence than the log's last
	// commit when they were read (a stalled or wedged projector).
	FaultViewsBehind FaultKind = "views_behind"
	// FaultAppliedTwice: two commits of one client apply the same command id.
	FaultAppliedTwice FaultKind = "applied_twice"
)

// Fault is one thing wrong with the log, named by where it was found.
type Fault struct {
	Kind    FaultKind       `json:"kind"`
	Seq     uint64          `json:"seq"`               // where it was detected
	Client  domain.ClientID `json:"client,omitempty"`  // whose chain or commit
	Related uint64          `json:"related,omitempty"` // the other sequence involved, if any
	Detail  string          `json:"detail"`
}

func (f *Fault) Error() string {
	who := ""
	if f.Client != "" {
		who = " client " + string(f.Client)
	}
	return fmt.Sprintf("%s at seq %d%s: %s", f.Kind, f.Seq, who, f.Detail)
}

// Is makes errors.Is(f, ErrFault) hold.
func (f *Fault) Is(target error) bool { return target == ErrFault }

// MaxFaults bounds the faults a report keeps; later ones are only counted.
const MaxFaults = 10000

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// Anchored says each client's commits are replayed from its first, so that first
	// commit must name no predecessor and start from no state. A replay of a window
	// takes each client's first commit in it on trust.
	Anchored bool
	// Complete says every message of the stream is replayed from its first: the
	// running digest is computed and Checkpoints are checked. It implies Anchored.
	Complete bool
	// Checkpoints to check, in sequence order (needs Complete).
	Checkpoints []Checkpoint
	// PublicKey checks the checkpoints' signatures; nil leaves them unchecked.
	PublicKey ed25519.PublicKey
	// CommitKey checks that studyd wrote every commit and rejection (Entry.MAC); nil
	// leaves authorship unchecked.
	CommitKey *CommitKey
	// Views, if set, is fed every commit, and its result joins the report.
	Views *ViewCheck
}

// Report is what a verification found.
type Report struct {
	Messages    uint64            `json:"messages"`
	Commits     uint64            `json:"commits"`
	Rejections  uint64            `json:"rejections"`
	Other       uint64            `json:"other"`
	Events      uint64            `json:"events"`
	Transitions uint64            `json:"transitions"`
	Clients     int               `json:"clients"`
	FirstSeq    uint64            `json:"first_seq"`
	LastSeq     uint64            `json:"last_seq"`
	Digest      string            `json:"digest,omitempty"` // the running digest at LastSeq (complete replays)
	FSMVersions map[string]uint64 `json:"fsm_versions"`     // commits per transition-table version
	// CheckpointsChecked counts checkpoints compared with the log; SignaturesChecked
	// says whether their signatures were verified too.
	CheckpointsChecked int  `json:"checkpoints_checked"`
	SignaturesChecked  bool `json:"signatures_checked"`
	// Authenticated counts the commits and rejections whose authorship was proven
	// (CommitKey given); Forged those that failed the proof.
	Authenticated uint64      `json:"authenticated"`
	Forged        uint64      `json:"forged"`
	Views         *ViewResult `json:"views,omitempty"`
	// Checks names every check and its verdict, OK only for what was checked.
	Checks     []Check `json:"checks"`
	Faults     []Fault `json:"faults"`
	FaultCount int     `json:"fault_count"`
}

// Err returns the first fault, or nil if the log verified.
func (r *Report) Err() error {
	if len(r.Faults) == 0 {
		return nil
	}
	return &r.Faults[0]
}

// chain is what the verifier remembers of one client: only what its checks of the
// client's next commit read, so that the memory a replay carries (and the collector
// scans) stays small per client however large the states grow: hashes as bytes, and
// of the state only each study's state, not the decoded enrollments.
type chain struct {
	lastSeq  uint64
	lastHash [32]byte
	studies  []studyState // the last commit's enrollments, in its order
	recent   [4]link      // older commits, to tell a reorder from an edit
}

// studyState is one enrollment as the state-continuity check needs it. The study is
// a number of the verifier's studyIDs, not its name: a client does not keep the names
// its last commit decoded, and a chain's studies hold no pointer for the collector to
// trace.
type studyState struct {
	study studyID
	state domain.State
}

// studyID numbers a study within one verifier (studyIDs); 0 is no study.
type studyID uint32

// studyIDs numbers the studies a verifier has seen: a few hundred in a real log,
// against millions of enrollments that name them.
type studyIDs map[domain.StudyRef]studyID

// of is s's number, given one if it had none.
func (ids studyIDs) of(s domain.StudyRef) studyID {
	id, ok := ids[s]
	if !ok {
		id = studyID(len(ids) + 1)
		ids[s] = id
	}
	return id
}

// stateOf is domain.ClientState.StateOf over what the chain kept.
func (ch *chain) stateOf(id studyID) domain.State {
	for i := range ch.studies {
		if ch.studies[i].study == id {
			return ch.studies[i].state
		}
	}
	return domain.StateNone
}

// keep replaces what the chain holds of the client's state with s's.
func (ch *chain) keep(s *domain.ClientState, ids studyIDs) {
	ch.studies = ch.studies[:0]
	if cap(ch.studies) < len(s.Enrollments) {
		ch.studies = make([]studyState, 0, len(s.Enrollments))
	}
	for i := range s.Enrollments {
		e := &s.Enrollments[i]
		ch.studies = append(ch.studies, studyState{study: ids.of(domain.StudyRef{Object: e.Object, Key: e.Key}), state: e.State})
	}
}

type link struct {
	seq  uint64 // 0: none
	hash [32]byte
}

// parseHash reads a hash as a commit names it: 64 lowercase hex digits. Anything else
// names no commit (ok false).
func parseHash(h string) (sum [32]byte, ok bool) {
	if len(h) != 64 {
		return sum, false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return sum, false
		}
	}
	_, err := hex.Decode(sum[:], []byte(h))
	return sum, err == nil
}

// Verifier checks a replayed stream message by message. It is not safe for
// concurrent use.
type Verifier struct {
	opts     VerifyOptions
	clients  map[domain.ClientID]*chain
	studies  studyIDs
	dangling map[string]link // prev hashes no commit had yet: seq and client of who named them
	digest   LogDigest
	nextCP   int
	report   Report
	touched  []touch
	byKind   map[FaultKind]int
	// applied maps a digest of (client, command id) to the commit that applied it, to
	// find a command applied twice. 64 bits of sha256 keep it small (16 bytes an
	// entry); a collision is ~1 in 10^6 at 10^7 commits, and the fault names both
	// sequences so it can be checked.
	applied map[uint64]uint64
}

type touch struct {
	study domain.StudyRef
	state domain.State
}

// NewVerifier returns a verifier with opts.
func NewVerifier(opts VerifyOptions) *Verifier {
	opts.Anchored = opts.Anchored || opts.Complete
	return &Verifier{opts: opts, clients: make(map[domain.ClientID]*chain), studies: make(studyIDs), dangling: make(map[string]link),
		applied: make(map[uint64]uint64),
		report:  Report{FSMVersions: map[string]uint64{}, Faults: []Fault{}}, byKind: make(map[FaultKind]int)}
}

func (v *Verifier) fault(f Fault) {
	v.report.FaultCount++
	v.byKind[f.Kind]++
	if len(v.report.Faults) < MaxFaults {
		v.report.Faults = append(v.report.Faults, f)
	}
}

// Decoded is an entry with the work that does not depend on the log's order done:
// the sha256 of its bytes and, for a commit, its decoded record (or the decode error)
// and the verifier's checks of the commit alone (precheck), so that a replay can
// decode on several cores and verify in order.
type Decoded struct {
	Entry
	Sum       [32]byte
	Record    eventstore.Record // commits only
	Rejection eventstore.Rejection
	Err       error // the decode error of a commit or rejection
	pre       precheck
}

// Decode does e's order-free work.
func Decode(e Entry) Decoded { return decode(e, eventstore.DecodeRecord) }

// DecodeLean is Decode with a lean record (eventstore.DecodeCommitLean): the same
// verdict on every entry, but of a commit only what the verifier and the projections'
// folds read, which is what an audit replay needs and most of what it costs. A caller
// that exports or keeps commits decodes them whole (Decode).
func DecodeLean(e Entry) Decoded { return decodeLeanIn(nil, e) }

// LeanDecoder is DecodeLean for a sequential reader, into memory it reuses: each
// record's events and enrollments are valid until the next Decode (as in ReplayLean).
// The zero value is ready.
type LeanDecoder struct{ arena eventstore.Arena }

// Decode is DecodeLean(e), reusing the memory of the record it returned last.
func (l *LeanDecoder) Decode(e Entry) Decoded {
	l.arena.Reset()
	return decodeLeanIn(&l.arena, e)
}

// decodeLeanIn is DecodeLean with the events and enrollments carved from a
// (eventstore.DecodeCommitLeanIn).
func decodeLeanIn(a *eventstore.Arena, e Entry) Decoded {
	return decode(e, func(pos uint64, data []byte) (eventstore.Record, error) {
		return eventstore.DecodeRecordLean(a, pos, data)
	})
}

func decode(e Entry, record func(pos uint64, data []byte) (eventstore.Record, error)) Decoded {
	d := Decoded{Entry: e}
	if e.Kind() == KindCommit {
		// The record's hash is the sha256 of the bytes: decode it rather than hash twice.
		if d.Record, d.Err = e.recordWith(record); d.Err == nil {
			d.pre = precheckCommit(&d.Record.Commit)
			if _, err := hex.Decode(d.Sum[:], []byte(d.Record.Hash)); err == nil {
				return d
			}
		}
	}
	d.Sum = sum(e.Data)
	if e.Kind() == KindRejection {
		d.Rejection, d.Err = e.Rejection()
	}
	return d
}

// Add checks the next message. It returns the decoded commit (ok true) when e is a
// commit that decoded, so a caller can also export or fold it.
func (v *Verifier) Add(e Entry) (eventstore.Record, bool) { return v.AddDecoded(Decode(e)) }

// AddDecoded is Add for an entry already decoded (see Decode).
func (v *Verifier) AddDecoded(d Decoded) (eventstore.Record, bool) {
	e := d.Entry
	r := &v.report
	if r.Messages == 0 {
		r.FirstSeq = e.Seq
	}
	r.Messages++
	r.LastSeq = e.Seq
	if v.opts.Complete {
		v.checkpointsBefore(e.Seq)
		v.digest.Add(e.Seq, e.Subject, d.Sum)
		v.checkpointAt(e.Seq)
	}
	if k := e.Kind(); v.opts.CommitKey != nil && k != KindOther {
		if err := v.opts.CommitKey.Verify(e.Subject, e.Data, e.MAC); err != nil {
			r.Forged++
			v.fault(Fault{Kind: FaultAuthorship, Seq: e.Seq, Client: e.SubjectClient(), Detail: err.Error()})
			if k == KindCommit {
				r.Commits++
			} else {
				r.Rejections++
			}
			return eventstore.Record{}, false
		}
		r.Authenticated++
	}
	switch e.Kind() {
	case KindRejection:
		r.Rejections++
		if d.Err != nil {
			v.fault(Fault{Kind: FaultUndecodable, Seq: e.Seq, Client: e.SubjectClient(), Detail: d.Err.Error()})
		}
		return eventstore.Record{}, false
	case KindOther:
		r.Other++
		return eventstore.Record{}, false
	}
	r.Commits++
	if d.Err != nil {
		v.fault(Fault{Kind: FaultUndecodable, Seq: e.Seq, Client: e.SubjectClient(), Detail: d.Err.Error()})
		return eventstore.Record{}, false
	}
	rec := d.Record
	c := &rec.Commit
	pre := d.pre
	if !pre.done { // a Decoded not made by Decode
		pre = precheckCommit(c)
	}
	r.FSMVersions[c.FSMVersion]++
	if sc := e.SubjectClient(); sc != c.Client {
		v.fault(Fault{Kind: FaultSubject, Seq: e.Seq, Client: sc,
			Detail: fmt.Sprintf("commit of client %q stored on %s", c.Client, e.Subject)})
	}
	v.checkApplied(e.Seq, c, &pre)
	ch := v.clients[c.Client]
	v.checkChain(e.Seq, c, rec.Hash, ch, &pre)
	v.checkEvents(e.Seq, c, ch, pre.bad)
	if pre.timeErr != nil {
		v.fault(Fault{Kind: FaultTime, Seq: e.Seq, Client: c.Client, Detail: pre.timeErr.Error()})
	}
	if ch == nil {
		ch = &chain{}
		v.clients[c.Client] = ch
	}
	copy(ch.recent[1:], ch.recent[:len(ch.recent)-1])
	ch.recent[0] = link{seq: ch.lastSeq, hash: ch.lastHash}
	ch.lastSeq, ch.lastHash = e.Seq, d.Sum
	ch.keep(&c.State, v.studies)
	if v.opts.Views != nil {
		v.opts.Views.Apply(e.Seq, c)
	}
	return rec, true
}

// checkApplied reports a command id the client had applied in an earlier commit.
func (v *Verifier) checkApplied(seq uint64, c *eventstore.Commit, pre *precheck) {
	if c.CommandID == "" {
		return
	}
	k := pre.applied
	if first, ok := v.applied[k]; ok {
		v.fault(Fault{Kind: FaultAppliedTwice, Seq: seq, Client: c.Client, Related: first,
			Detail: fmt.Sprintf("command %q was applied already by the commit at seq %d", c.CommandID, first)})
		return
	}
	v.applied[k] = seq
}

// checkChain compares c's PrevHash with the hash of the client's previous commit ch.
func (v *Verifier) checkChain(seq uint64, c *eventstore.Commit, hash string, ch *chain, pre *precheck) {
	if l, ok := v.dangling[hash]; ok {
		delete(v.dangling, hash)
		v.fault(Fault{Kind: FaultChain, Seq: seq, Client: c.Client, Related: l.seq,
			Detail: fmt.Sprintf("this commit is the predecessor that seq %d named, but it comes after it: commits reordered", l.seq)})
	}
	switch {
	case ch == nil && !v.opts.Anchored:
		return // the window's first commit of this client anchors its chain
	case ch == nil && c.PrevHash == "":
		return
	case ch == nil:
		v.dangling[c.PrevHash] = link{seq: seq}
		v.fault(Fault{Kind: FaultChain, Seq: seq, Client: c.Client,
			Detail: fmt.Sprintf("the client's first commit in the log names a predecessor %s: a commit before it was removed or edited", short(c.PrevHash))})
		return
	}
	prev, named := pre.prev, pre.prevNamed
	switch {
	case named && prev == ch.lastHash:
		return
	case c.PrevHash == "":
		v.fault(Fault{Kind: FaultChain, Seq: seq, Client: c.Client, Related: ch.lastSeq,
			Detail: fmt.Sprintf("commit claims to be the client's first, but seq %d came before it: inserted or reordered", ch.lastSeq)})
		return
	}
	for _, l := range ch.recent {
		if named && l.seq != 0 && l.hash == prev {
			v.fault(Fault{Kind: FaultChain, Seq: seq, Client: c.Client, Related: ch.lastSeq,
				Detail: fmt.Sprintf("prev_hash names seq %d, but the client's previous commit is seq %d: seq %d was inserted, or commits reordered", l.seq, ch.lastSeq, ch.lastSeq)})
			return
		}
	}
	v.dangling[c.PrevHash] = link{seq: seq}
	v.fault(Fault{Kind: FaultChain, Seq: seq, Client: c.Client, Related: ch.lastSeq,
		Detail: fmt.Sprintf("prev_hash %s is not the hash %s of the client's previous commit at seq %d: seq %d was edited, or a commit between was removed",
			short(c.PrevHash), short(hex.EncodeToString(ch.lastHash[:])), ch.lastSeq, ch.lastSeq)})
}

// checkEvents checks every event of c: well formed and a legal transition (bad, from
// precheckCommit), from the state the client was in, and ending in the state the
// commit records.
func (v *Verifier) checkEvents(seq uint64, c *eventstore.Commit, ch *chain, bad []eventFault) {
	v.touched = v.touched[:0]
	for i := range c.Events {
		e := &c.Events[i]
		v.report.Events++
		if len(bad) > 0 && bad[0].i == i {
			v.fault(Fault{Kind: bad[0].kind, Seq: seq, Client: c.Client, Detail: fmt.Sprintf("events[%d]: %v", i, bad[0].err)})
			bad = bad[1:]
			continue
		}
		if e.Type.Method() == "" {
			continue
		}
		v.report.Transitions++
		study := e.Study()
		j := v.touchedIndex(study)
		switch {
		case j >= 0:
			if v.touched[j].state != e.From {
				v.fault(Fault{Kind: FaultState, Seq: seq, Client: c.Client,
					Detail: fmt.Sprintf("events[%d] %s starts from %s, but the commit's previous event left it %s", i, study, e.From, v.touched[j].state)})
			}
			v.touched[j].state = e.To
			continue
		case ch != nil:
			if was := ch.stateOf(v.studies[study]); was != e.From {
				v.fault(Fault{Kind: FaultState, Seq: seq, Client: c.Client, Related: ch.lastSeq,
					Detail: fmt.Sprintf("events[%d] %s starts from %s, but the client's previous commit (seq %d) left it %s", i, study, e.From, ch.lastSeq, was)})
			}
		case v.opts.Anchored && e.From != domain.StateNone:
			v.fault(Fault{Kind: FaultState, Seq: seq, Client: c.Client,
				Detail: fmt.Sprintf("events[%d] %s starts from %s in the client's first commit", i, study, e.From)})
		}
		v.touched = append(v.touched, touch{study: study, state: e.To})
	}
	for _, t := range v.touched {
		if got := c.State.StateOf(t.study); got != t.state {
			v.fault(Fault{Kind: FaultState, Seq: seq, Client: c.Client,
				Detail: fmt.Sprintf("the commit's events leave %s %s, but its state records %s", t.study, t.state, got)})
		}
	}
}

func (v *Verifier) touchedIndex(s domain.StudyRef) int {
	for i := range v.touched {
		if v.touched[i].study == s {
			return i
		}
	}
	return -1
}

// checkpointsBefore checks the checkpoints whose sequence lies before seq: the log has
// no message at their own sequence, so the digest so far must match.
func (v *Verifier) checkpointsBefore(seq uint64) {
	for v.nextCP < len(v.opts.Checkpoints) && v.opts.Checkpoints[v.nextCP].Seq < seq {
		v.checkCheckpoint(v.opts.Checkpoints[v.nextCP], seq)
		v.nextCP++
	}
}

// checkpointAt checks the checkpoints at exactly seq, once the message is digested.
func (v *Verifier) checkpointAt(seq uint64) {
	for v.nextCP < len(v.opts.Checkpoints) && v.opts.Checkpoints[v.nextCP].Seq == seq {
		v.checkCheckpoint(v.opts.Checkpoints[v.nextCP], seq)
		v.nextCP++
	}
}

func (v *Verifier) checkCheckpoint(cp Checkpoint, at uint64) {
	v.report.CheckpointsChecked++
	if v.opts.PublicKey != nil {
		if err := cp.VerifySignature(v.opts.PublicKey); err != nil {
			v.fault(Fault{Kind: FaultSignature, Seq: cp.Seq, Detail: err.Error()})
		}
	}
	switch {
	case cp.Digest == v.digest.Hex() && cp.Count == v.digest.Count:
	case cp.Seq != v.digest.Seq:
		v.fault(Fault{Kind: FaultCheckpoint, Seq: cp.Seq, Related: at,
			Detail: fmt.Sprintf("the checkpoint covers %d messages through seq %d, but the log has no message at seq %d (%d messages up to it): messages removed", cp.Count, cp.Seq, cp.Seq, v.digest.Count)})
	default:
		v.fault(Fault{Kind: FaultCheckpoint, Seq: cp.Seq,
			Detail: fmt.Sprintf("digest of the %d messages through seq %d is %s, the signed checkpoint says %s over %d: a message at or before seq %d was edited, removed, reordered or inserted",
				v.digest.Count, cp.Seq, short(v.digest.Hex()), short(cp.Digest), cp.Count, cp.Seq)})
	}
}

// Finish completes the report: checkpoints beyond the end of the log, and the views.
func (v *Verifier) Finish() Report {
	r := v.report
	if v.opts.Complete {
		for ; v.nextCP < len(v.opts.Checkpoints); v.nextCP++ {
			cp := v.opts.Checkpoints[v.nextCP]
			r.CheckpointsChecked++
			if v.opts.PublicKey != nil {
				if err := cp.VerifySignature(v.opts.PublicKey); err != nil {
					v.fault(Fault{Kind: FaultSignature, Seq: cp.Seq, Detail: err.Error()})
				}
			}
			v.fault(Fault{Kind: FaultCheckpoint, Seq: cp.Seq, Related: v.digest.Seq,
				Detail: fmt.Sprintf("the log ends at seq %d, before the checkpoint at seq %d: messages removed from the end", v.digest.Seq, cp.Seq)})
		}
		r.Digest = v.digest.Hex()
		r.SignaturesChecked = v.opts.PublicKey != nil && len(v.opts.Checkpoints) > 0
	}
	if v.opts.Views != nil {
		res := v.opts.Views.Finish(r.LastSeq)
		r.Views = &res
		for _, m := range res.Mismatches {
			v.fault(Fault{Kind: FaultView, Seq: m.Seq, Detail: m.String()})
		}
		if res.Behind() {
			v.fault(Fault{Kind: FaultViewsBehind, Seq: res.Reflects, Related: res.Head,
				Detail: fmt.Sprintf("the views reflect seq %d, but the log's last commit was seq %d when they were read: the projector is behind or stalled", res.Reflects, res.Head)})
		}
	}
	r.Clients = len(v.clients)
	r.Faults, r.FaultCount = v.report.Faults, v.report.FaultCount
	r.Checks = v.checks(&r)
	return r
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
