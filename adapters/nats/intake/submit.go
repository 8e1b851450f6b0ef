package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/internal/inflight"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/internal/buildinfo"
)

// DefaultSubmitTimeout bounds how long studyd.submit waits for a command's outcome.
const DefaultSubmitTimeout = 10 * time.Second

// SubmitInFlight bounds the studyd.submit requests one instance serves at once; more
// are answered 503 at once rather than queued behind slow ones.
const SubmitInFlight = 512

// SubmitConfig tunes the submit endpoint. The zero value is usable.
type SubmitConfig struct {
	Timeout time.Duration // how long to wait for an outcome; default DefaultSubmitTimeout
}

// SubmitService serves the micro endpoint studyd.submit: a request carrying one
// command (JSON or msgpack by Content-Type) is published to STUDYD_CMDS like any other
// command — so it is applied in order with the client's other commands, by whichever
// instance owns the partition — and the reply is its Outcome as JSON. A command
// refused before it can be routed (app.Admit) is recorded here and answered at once.
//
// Requests are served concurrently (at most SubmitInFlight at once), so one waiting
// for its outcome never delays another. A resend of a command the stream already
// holds (a duplicate PubAck) is answered with the outcome recorded in the log.
type SubmitService struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	handler *app.Handler
	cfg     SubmitConfig
	ready   chan struct{}
	once    sync.Once // closes ready
}

// NewSubmitService returns the endpoint's service. It does no I/O: Run serves.
func NewSubmitService(nc *nats.Conn, js jetstream.JetStream, handler *app.Handler, cfg SubmitConfig) *SubmitService {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSubmitTimeout
	}
	return &SubmitService{nc: nc, js: js, handler: handler, cfg: cfg, ready: make(chan struct{})}
}

// Ready is closed once the endpoint answers.
func (s *SubmitService) Ready() <-chan struct{} { return s.ready }

// Run serves studyd.submit until ctx is done, then stops serving and returns once
// every request in hand has been answered (each waits at most the timeout).
func (s *SubmitService) Run(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	in := inflight.New(SubmitInFlight)
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

// submit handles one studyd.submit request.
func (s *SubmitService) submit(ctx context.Context, req micro.Request) {
	contentType := req.Headers().Get(client.HeaderContentType)
	inc := app.Incoming{Subject: client.SubmitSubject, ContentType: contentType, Payload: req.Data()}
	cmd, err := app.Admit(inc, client.DecodeCommand)
	if err != nil {
		// Refused before it could be routed to a client's partition: record the
		// rejection here, as the intake would, and answer.
		r, pos, rerr := s.handler.Reject(ctx, inc, cmd, err)
		if rerr != nil {
			_ = req.Error("503", rerr.Error(), nil)
			return
		}
		out, _ := json.Marshal(rejected(r, pos))
		_ = req.Respond(out)
		return
	}
	inbox := nats.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		_ = req.Error("503", "subscribe for outcome: "+err.Error(), nil)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	msg := nats.NewMsg(client.CommandSubject(cmd.ClientID))
	msg.Data = req.Data()
	msg.Header.Set(client.HeaderReplyTo, inbox)
	if contentType != "" {
		msg.Header.Set(client.HeaderContentType, contentType)
	}
	var opts []jetstream.PublishOpt
	if cmd.CommandID != "" {
		opts = append(opts, jetstream.WithMsgID(client.CommandMsgID(cmd)))
	}
	ack, err := s.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		_ = req.Error("503", "publish to "+client.CommandsStream+": "+err.Error(), nil)
		return
	}
	if ack.Duplicate {
		// The stream held this very command already, so no outcome will come to our
		// inbox: the first one is in the log (or will be, once it is applied).
		s.respondRecorded(ctx, cmd, req)
		return
	}
	reply, err := sub.NextMsgWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = req.Error("504", fmt.Sprintf("command %s accepted but no outcome within %s (it will still be applied)", cmd.CommandID, s.cfg.Timeout), nil)
		return
	}
	if err != nil {
		_ = req.Error("503", "wait for outcome: "+err.Error(), nil)
		return
	}
	_ = req.Respond(reply.Data, micro.WithHeaders(micro.Headers{client.HeaderContentType: []string{client.ContentTypeJSON}}))
}

// respondRecorded answers a resent command with the outcome the log records for it,
// polling while the original is still queued, until ctx ends.
func (s *SubmitService) respondRecorded(ctx context.Context, cmd domain.Command, req micro.Request) {
	wait := 20 * time.Millisecond
	for {
		out, ok, err := OutcomeOf(ctx, s.handler, cmd)
		if ok {
			b, _ := json.Marshal(out)
			_ = req.Respond(b, micro.WithHeaders(micro.Headers{client.HeaderContentType: []string{client.ContentTypeJSON}}))
			return
		}
		select {
		case <-ctx.Done():
			why := "the original is still queued"
			if err != nil {
				why = err.Error()
			}
			_ = req.Error("504", fmt.Sprintf("command %s was sent before and is held by %s, but no outcome is recorded within %s (%s); it will still be applied",
				cmd.CommandID, client.CommandsStream, s.cfg.Timeout, why), nil)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
