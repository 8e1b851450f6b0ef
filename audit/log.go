package audit

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/studyd/studyd/eventstore"
)

// The event log as an audit reads it. An audit does no I/O of its own: it is handed a
// Log (adapters/nats/eventlog implements it over JetStream) and reads it through
// ReplayDecoded and Verify.

// Subject prefixes of the events stream: a client's commits and its rejections. The
// event log writes by them (eventlog.EventSubject, RejectionSubject).
const (
	CommitPrefix    = "studyd.evt."
	RejectionPrefix = "studyd.rej."
)

// Range selects messages of a log. Zero fields select everything.
type Range struct {
	// Subjects filter the log (e.g. CommitPrefix+client for one client's commits).
	Subjects []string
	// From and To bound the sequence, inclusive; To 0 is the log's last sequence when
	// the replay starts.
	From, To uint64
	// Since and Until bound the time the log stored a message (Since inclusive, Until
	// exclusive).
	Since, Until time.Time
}

// Log is an event log's messages in sequence order.
type Log interface {
	// Bounds returns the first and last sequence a replay of r can deliver, and ok
	// false if it has nothing to read.
	Bounds(ctx context.Context, r Range) (first, last uint64, ok bool, err error)
	// Replay delivers the messages of r to fn in sequence order until r ends or fn
	// returns an error (which Replay returns).
	Replay(ctx context.Context, r Range, fn func(Entry) error) error
}

// Coverage says what a replay of r can verify in a log whose first sequence is first:
// complete when it is every message from the first (the running digest and the
// checkpoints can be checked), anchored when it sees every selected client's chain
// from its first commit.
func Coverage(r Range, first uint64) (complete, anchored bool) {
	fromStart := r.From <= first && r.Since.IsZero()
	complete = fromStart && len(r.Subjects) == 0 && r.Until.IsZero()
	anchored = fromStart && (len(r.Subjects) == 0 || allClientSubjects(r.Subjects))
	return complete, anchored
}

// allClientSubjects reports whether every filter is one client's commit subject, whose
// chain a replay from the start sees whole.
func allClientSubjects(subjects []string) bool {
	for _, s := range subjects {
		if !strings.HasPrefix(s, CommitPrefix) || strings.ContainsAny(s, "*>") {
			return false
		}
	}
	return true
}

// Verify replays r of log through a Verifier with opts, calling progress (optional)
// with each sequence verified. The report lists every fault; the error is for the
// replay itself failing.
func Verify(ctx context.Context, log Log, r Range, opts VerifyOptions, progress func(seq uint64)) (Report, error) {
	v := NewVerifier(opts)
	err := ReplayLean(ctx, log, r, 0, func(d Decoded) error {
		v.AddDecoded(d)
		if progress != nil {
			progress(d.Seq)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return v.Finish(), nil
}

// decodeBatch is how many entries one decode job holds: enough to amortise the
// hand-offs, small enough to keep the workers busy near the end of a replay.
const decodeBatch = 64

type decodeJob struct {
	items []Decoded
	done  chan struct{}
	arena eventstore.Arena // a lean replay's events and enrollments of the items
}

// freeJobs are jobs fn is done with, for the readers of every replay to fill again:
// with their items' slice and (lean) their arena, a replay's memory is mostly that of
// the jobs in flight rather than some ten kilobytes made and collected per commit.
var freeJobs = sync.Pool{New: func() any { return &decodeJob{items: make([]Decoded, 0, decodeBatch)} }}

// ReplayDecoded is log.Replay with the order-free work (sha256, decoding, the checks
// of each commit alone) spread over workers goroutines (0: GOMAXPROCS), while fn still
// sees every entry in sequence order on the caller's goroutine. Decoding dominates an
// audit replay, so this is what lets it keep up with the raw read on more than one
// core.
func ReplayDecoded(ctx context.Context, log Log, r Range, workers int, fn func(Decoded) error) error {
	return replayDecoded(ctx, log, r, workers, false, fn)
}

// ReplayLean is ReplayDecoded with lean records (DecodeLean): what verifying and
// folding the log read of each commit, and no more. Its events and enrollments are
// carved from memory the replay reuses once fn has seen a batch of entries, so fn must
// not keep a record's Events or State.Enrollments slices (or pointers into them) after
// it returns; the strings, and the events' ratios, are its own. The verifier and the
// projections' folds copy what they keep.
func ReplayLean(ctx context.Context, log Log, r Range, workers int, fn func(Decoded) error) error {
	return replayDecoded(ctx, log, r, workers, true, fn)
}

func replayDecoded(ctx context.Context, log Log, r Range, workers int, lean bool, fn func(Decoded) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ordered := make(chan *decodeJob, 4*workers)
	work := make(chan *decodeJob, 4*workers)
	// free holds the jobs fn is done with, for this replay's reader to fill again (the
	// pool, which a collection empties, only carries them from one replay to the next).
	free := make(chan *decodeJob, 4*workers+2)
	defer func() {
		for {
			select {
			case j := <-free:
				freeJobs.Put(j)
			default:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				for i := range j.items {
					if lean {
						j.items[i] = decodeLeanIn(&j.arena, j.items[i].Entry)
					} else {
						j.items[i] = Decode(j.items[i].Entry)
					}
				}
				close(j.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(work)
		next := func() *decodeJob {
			var j *decodeJob
			select {
			case j = <-free:
			default:
				j = freeJobs.Get().(*decodeJob)
			}
			j.done = make(chan struct{})
			return j
		}
		j := next()
		send := func() bool {
			select {
			case ordered <- j:
			case <-ctx.Done():
				return false
			}
			work <- j
			j = next()
			return true
		}
		err := log.Replay(ctx, r, func(e Entry) error {
			j.items = append(j.items, Decoded{Entry: e})
			if len(j.items) == decodeBatch && !send() {
				return ctx.Err()
			}
			return nil
		})
		if err == nil && len(j.items) > 0 {
			send()
		}
		readErr <- err
	}()
	var fnErr error
	for j := range ordered {
		<-j.done
		if fnErr != nil {
			continue // drain, so the reader and workers finish
		}
		for i := range j.items {
			if fnErr = fn(j.items[i]); fnErr != nil {
				cancel()
				break
			}
		}
		clear(j.items) // let the entries' bytes go while the job waits
		j.items = j.items[:0]
		j.arena.Reset()
		select {
		case free <- j:
		default:
			freeJobs.Put(j)
		}
	}
	wg.Wait()
	err := <-readErr
	if fnErr != nil {
		return fnErr
	}
	return err
}
