package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/internal/inflight"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/internal/buildinfo"
)

// SubmitInFlight bounds the studyd.submit requests one instance serves at once; more
// are answered 503 at once rather than queued behind slow ones.
const SubmitInFlight = 512

// SubmitConfig tunes the submit endpoint. The zero value is usable.
type SubmitConfig struct {
	// Batch is the most commands decided and appended together; default DefaultWindow.
	Batch int
	// Committers is how many batches are decided and written at once, each for its own
	// share of the clients (so one client's commands stay in one queue, in order):
	// while one batch waits for the disk, another is decided. Default
	// DefaultCommitters.
	Committers int
	Logger     *slog.Logger
}

// DefaultCommitters is one committer per two cores. The committers share the cores
// with the server and the projector, and fewer committers write fewer, larger
// batches: on two cores one committer answered 4.8 k commands/s with --sync always
// where four answered 3.4–3.5 k (8.5 k against 7.9 k with --sync 2m;
// docs/BENCHMARKS.md, "Issue 15, sixth session"). More cores were not measured.
func DefaultCommitters() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// SubmitService serves the micro endpoint studyd.submit: a request carrying one
// command (JSON or msgpack by Content-Type) is decided and appended by the instance
// that receives it, without the command stream, and the reply is its Outcome as JSON,
// sent once the commit (or the recorded rejection) is stored — on a server that syncs
// every write, on disk. Requests that arrive while a batch is being written wait for
// the next one, and a batch's commits are appended together (app.Handler.HandleBatch,
// an atomic batch with eventlog.WithAtomicBatches): one round trip and, durable, one
// fsync for the batch. A client's commands sent together are decided in the order they
// arrived; commands of one client sent at once through several instances, or through
// both the stream and this endpoint, are each applied once, in an order the senders
// did not fix.
//
// Requests are served concurrently (at most SubmitInFlight at once). A resend of a
// command is answered with its first outcome: the commit that applied it, or its
// recorded refusal.
type SubmitService struct {
	nc      *nats.Conn
	handler *app.Handler
	cfg     SubmitConfig
	queues  []chan submission // by client: queueOf
	ready   chan struct{}
	once    sync.Once // closes ready
}

// submission is one command waiting for its batch.
type submission struct {
	inc  app.Incoming
	cmd  domain.Command
	done chan settledSubmission
}

type settledSubmission struct {
	out client.Outcome
	err error
}

// NewSubmitService returns the endpoint's service. It does no I/O: Run serves.
func NewSubmitService(nc *nats.Conn, handler *app.Handler, cfg SubmitConfig) *SubmitService {
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultWindow
	}
	if cfg.Committers <= 0 {
		cfg.Committers = DefaultCommitters()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	queues := make([]chan submission, cfg.Committers)
	for i := range queues {
		queues[i] = make(chan submission, SubmitInFlight)
	}
	return &SubmitService{nc: nc, handler: handler, cfg: cfg, queues: queues, ready: make(chan struct{})}
}

// Ready is closed once the endpoint answers.
func (s *SubmitService) Ready() <-chan struct{} { return s.ready }

// Run serves studyd.submit until ctx is done, then stops serving and returns once
// every request in hand has been answered.
func (s *SubmitService) Run(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	in := inflight.New(SubmitInFlight)
	var committers sync.WaitGroup
	for _, q := range s.queues {
		committers.Go(func() { s.commit(base, q) })
	}
	defer func() {
		for _, q := range s.queues {
			close(q) // every request in hand has queued its command by now
		}
		committers.Wait()
	}()
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        client.SubmitService,
		Version:     buildinfo.SemVer(),
		Description: "submit one studyd command and get its outcome",
		Endpoint: &micro.EndpointConfig{
			Subject: client.SubmitSubject,
			Handler: micro.HandlerFunc(func(req micro.Request) {
				in.Serve(req, func(req micro.Request) { s.submit(base, req) })
			}),
			// Every instance serves it; any one answering is enough.
			QueueGroup: client.SubmitService,
		},
	})
	if err != nil {
		return fmt.Errorf("serve %s: %w", client.SubmitSubject, err)
	}
	if err := s.nc.Flush(); err != nil {
		_ = svc.Stop()
		return fmt.Errorf("serve %s: %w", client.SubmitSubject, err)
	}
	s.once.Do(func() { close(s.ready) })
	<-ctx.Done()
	err = svc.Stop()
	in.Wait()
	if err != nil {
		return fmt.Errorf("serve %s: stop: %w", client.SubmitSubject, err)
	}
	return nil
}

// submit handles one studyd.submit request: the command is admitted, queued for the
// next batch, and answered with its outcome.
func (s *SubmitService) submit(ctx context.Context, req micro.Request) {
	inc := app.Incoming{Subject: client.SubmitSubject, ContentType: req.Headers().Get(client.HeaderContentType), Payload: req.Data()}
	cmd, err := app.Admit(inc, client.DecodeCommand)
	var out client.Outcome
	if err != nil {
		// Refused before it could be decided: record the rejection and answer.
		out, err = conclude(ctx, s.handler, s.cfg.Logger, inc, cmd, app.Result{}, err)
	} else {
		inc.Client = cmd.ClientID
		done := make(chan settledSubmission, 1)
		s.queueOf(cmd.ClientID) <- submission{inc: inc, cmd: cmd, done: done}
		r := <-done
		out, err = r.out, r.err
	}
	if err != nil {
		_ = req.Error("503", err.Error(), nil)
		return
	}
	b, _ := json.Marshal(out)
	_ = req.Respond(b, micro.WithHeaders(micro.Headers{client.HeaderContentType: []string{client.ContentTypeJSON}}))
}

// queueOf is the queue of client's commands.
func (s *SubmitService) queueOf(client domain.ClientID) chan submission {
	h := fnv.New32a()
	_, _ = h.Write([]byte(client))
	return s.queues[h.Sum32()%uint32(len(s.queues))]
}

// commit takes queue's commands in batches until it is closed: whatever has arrived
// while the previous batch was written, up to Batch, decided in waves of distinct
// clients (a client's commands in the order they arrived).
func (s *SubmitService) commit(ctx context.Context, queue chan submission) {
	for batch := groupOf(queue, s.cfg.Batch); len(batch) > 0; batch = groupOf(queue, s.cfg.Batch) {
		for len(batch) > 0 {
			var wave, later []submission
			in := make(map[domain.ClientID]bool)
			for _, sub := range batch {
				if in[sub.cmd.ClientID] {
					later = append(later, sub)
					continue
				}
				in[sub.cmd.ClientID] = true
				wave = append(wave, sub)
			}
			s.settle(ctx, wave)
			batch = later
		}
	}
}

// settle decides and appends one wave and answers each of its commands.
func (s *SubmitService) settle(ctx context.Context, wave []submission) {
	reqs := make([]app.Request, len(wave))
	for i, sub := range wave {
		reqs[i] = app.Request{Cmd: sub.cmd}
	}
	for i, r := range s.handler.HandleBatch(ctx, reqs) {
		sub := wave[i]
		out, err := conclude(ctx, s.handler, s.cfg.Logger, sub.inc, sub.cmd, r.Result, r.Err)
		sub.done <- settledSubmission{out: out, err: err}
	}
}
