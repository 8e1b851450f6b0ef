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
	// Instances is how many studyd instances share the server (0 means 1), each with
	// its own connection, store, handler, intake and projector, as separate studyd
	// processes would have: they share the partition consumers, and one projector
	// leads while the others stand by.
	Instances int
	// Listen opens a loopback port for clients in other processes (the scale run's
	// pre-fill generator); otherwise connections are in-process only.
	Listen bool
}

// node is one scenario's world: an embedded nats-server on a fresh store directory
// and, if asked, studyd's command path and projector in this process (once per
// instance).
type node struct {
	dir   string
	ns    *server.Server
	nc    *nats.Conn // the first studyd instance's own connection, as in cmd/studyd
	js    jetstream.JetStream
	proj  *views.Projector       // the first instance's, which leads
	regs  []*prometheus.Registry // each instance's intake metrics
	conns []*nats.Conn           // the further instances' connections
	// storeOpts are the event store's options, as studyd's defaults choose them.
	storeOpts []eventlog.StoreOption

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
	instances := max(cfg.Instances, 1)
	n := &node{dir: dir, errs: make(chan error, 2*instances)}
	if cfg.CommitKey != nil {
		n.storeOpts = append(n.storeOpts, eventlog.WithCommitKey(cfg.CommitKey))
	}
	if cfg.SyncAlways { // studyd's --append auto
		n.storeOpts = append(n.storeOpts, eventlog.WithAtomicBatches())
	}
	ecfg := embedded.Config{StoreDir: dir, SyncAlways: cfg.SyncAlways}
	if cfg.Listen {
		ecfg.Listen = "127.0.0.1:-1"
	}
	n.ns, err = embedded.Start(ecfg)
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
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	for i := range instances {
		nc, js := n.nc, n.js
		if i > 0 {
			if nc, js, err = n.client(fmt.Sprintf("studyd-%d", i+1)); err != nil {
				n.stop()
				return nil, err
			}
			n.conns = append(n.conns, nc)
		}
		proj := n.startInstance(runCtx, nc, js, cfg)
		if i > 0 {
			continue
		}
		// The projector leads once it holds its lease; a command published before then
		// would only wait, but the latency figures should not include the start. The
		// first instance's takes the lease before the others' exist, so it is the one
		// whose progress the scenarios watch.
		n.proj = proj
		deadline := time.Now().Add(10 * time.Second)
		for !n.proj.Leading() {
			if time.Now().After(deadline) {
				n.stop()
				return nil, errors.New("start node: the projector did not take its lease in 10s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return n, nil
}

// startInstance runs one studyd instance's command path and projector on nc until
// runCtx ends, wired as cmd/studyd wires them, and returns its projector.
func (n *node) startInstance(runCtx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg nodeConfig) *views.Projector {
	quiet := slog.New(slog.DiscardHandler)
	store := eventlog.NewStore(js, n.storeOpts...)
	handler := app.NewHandler(store, app.Config{CacheSize: cfg.CacheSize})
	proj := views.NewProjector(js, views.ProjectorConfig{Logger: quiet, CommitKey: cfg.CommitKey})
	reg := prometheus.NewRegistry()
	n.regs = append(n.regs, reg)
	in := intake.New(nc, js, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: 5 * time.Second, Logger: quiet, Metrics: intake.NewMetrics(reg)})
	n.wg.Go(func() { n.errs <- in.Run(runCtx) })
	n.wg.Go(func() { n.errs <- proj.Run(runCtx) })
	return proj
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
	for _, nc := range n.conns {
		nc.Close()
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

// intakeStats are the intake's own figures, summed over the instances: commands
// settled, their mean time in the intake (receipt to ack), and retries after transient
// failures; and how the settled commands were shared among the instances.
type intakeStats struct {
	Settled     float64       `json:"settled"`
	Mean        time.Duration `json:"mean_ns"`
	Retries     float64       `json:"retries"`
	PerInstance []float64     `json:"settled_per_instance"`
}

func (n *node) intakeStats() intakeStats {
	var st intakeStats
	var seconds float64
	for _, reg := range n.regs {
		st.PerInstance = append(st.PerInstance, 0)
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "studyd_command_seconds":
					h := m.GetHistogram()
					st.Settled += float64(h.GetSampleCount())
					st.PerInstance[len(st.PerInstance)-1] += float64(h.GetSampleCount())
					seconds += h.GetSampleSum()
				case "studyd_command_retries_total":
					st.Retries += m.GetCounter().GetValue()
				}
			}
		}
	}
	if st.Settled > 0 {
		st.Mean = time.Duration(seconds / st.Settled * float64(time.Second))
	}
	return st
}
