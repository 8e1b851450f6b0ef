package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
)

// nodeConfig says which of studyd's parts a scenario runs.
type nodeConfig struct {
	// Service runs the intake, handler and projector as cmd/studyd wires them;
	// otherwise only the server and the events stream exist.
	Service    bool
	Partitions int
	CacheSize  int
	// CommitKey authenticates every commit, as cmd/studyd does by default; nil runs
	// without (the comparison that prices it).
	CommitKey *audit.CommitKey
	// SyncAlways fsyncs before every acknowledgement (studyd's --sync always); off,
	// the server syncs every 2 minutes, its default (the other scenarios' setting).
	SyncAlways bool
}

// node is one scenario's world: an embedded nats-server on a fresh store directory
// and, if asked, studyd's command path and projector in this process.
type node struct {
	dir   string
	ns    *server.Server
	nc    *nats.Conn // studyd's own connection, as in cmd/studyd
	js    jetstream.JetStream
	store *eventlog.Store
	proj  *views.Projector
	reg   *prometheus.Registry // the intake's metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// startNode starts a server on a fresh temporary store and creates studyd's streams.
func startNode(ctx context.Context, cfg nodeConfig) (*node, error) {
	dir, err := os.MkdirTemp("", "studybench-")
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n := &node{dir: dir, errs: make(chan error, 2)}
	n.ns, err = embedded.Start(embedded.Config{StoreDir: dir, SyncAlways: cfg.SyncAlways})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if n.nc, err = embedded.ConnectInProcess(n.ns, "studyd"); err != nil {
		n.stop()
		return nil, err
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		n.stop()
		return nil, fmt.Errorf("start node: %w", err)
	}
	if _, err := eventlog.EnsureEventsStream(ctx, n.js, 1); err != nil {
		n.stop()
		return nil, err
	}
	if !cfg.Service {
		return n, nil
	}
	if _, err := intake.EnsureCommandsStream(ctx, n.js, cfg.Partitions, 1); err != nil {
		n.stop()
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	var storeOpts []eventlog.StoreOption
	if cfg.CommitKey != nil {
		storeOpts = append(storeOpts, eventlog.WithCommitKey(cfg.CommitKey))
	}
	n.store = eventlog.NewStore(n.js, storeOpts...)
	handler := app.NewHandler(n.store, app.Config{CacheSize: cfg.CacheSize})
	n.proj = views.NewProjector(n.js, views.ProjectorConfig{Logger: quiet, CommitKey: cfg.CommitKey})
	n.reg = prometheus.NewRegistry()
	intake := intake.New(n.nc, n.js, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: 5 * time.Second, Logger: quiet, Metrics: intake.NewMetrics(n.reg)})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.wg.Go(func() { n.errs <- intake.Run(runCtx) })
	n.wg.Go(func() { n.errs <- n.proj.Run(runCtx) })
	// The projector leads once it holds its lease; a command published before then
	// would only wait, but the latency figures should not include the start.
	deadline := time.Now().Add(10 * time.Second)
	for !n.proj.Leading() {
		if time.Now().After(deadline) {
			n.stop()
			return nil, errors.New("start node: the projector did not take its lease in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n, nil
}

// client opens another in-process connection, as a publisher or reader outside studyd.
func (n *node) client(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := embedded.ConnectInProcess(n.ns, name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("client %s: %w", name, err)
	}
	return nc, js, nil
}

// lastSeq is the events stream's last sequence and message count.
func (n *node) lastSeq(ctx context.Context) (last, msgs uint64, err error) {
	st, err := n.js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return 0, 0, fmt.Errorf("events stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("events stream: %w", err)
	}
	return info.State.LastSeq, info.State.Msgs, nil
}

// failed returns an error one of studyd's parts stopped with, if any.
func (n *node) failed() error {
	select {
	case err := <-n.errs:
		if err == nil {
			err = errors.New("a studyd part stopped")
		}
		return err
	default:
		return nil
	}
}

// stop drains studyd's parts, shuts the server down and removes its store.
func (n *node) stop() {
	if n.cancel != nil {
		n.cancel()
		n.wg.Wait()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	_ = os.RemoveAll(n.dir)
}

// intakeStats are the intake's own figures: commands settled, their mean time in the
// intake (receipt to ack), and retries after transient failures.
type intakeStats struct {
	Settled float64       `json:"settled"`
	Mean    time.Duration `json:"mean_ns"`
	Retries float64       `json:"retries"`
}

func (n *node) intakeStats() intakeStats {
	var st intakeStats
	if n.reg == nil {
		return st
	}
	mfs, err := n.reg.Gather()
	if err != nil {
		return st
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "studyd_command_seconds":
				h := m.GetHistogram()
				st.Settled = float64(h.GetSampleCount())
				if h.GetSampleCount() > 0 {
					st.Mean = time.Duration(h.GetSampleSum() / float64(h.GetSampleCount()) * float64(time.Second))
				}
			case "studyd_command_retries_total":
				st.Retries += m.GetCounter().GetValue()
			}
		}
	}
	return st
}
