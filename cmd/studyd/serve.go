package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/app"
)

// serve starts every part of studyd and runs until ctx ends, then drains in order:
// stop taking commands, finish those in hand, flush the projections, close NATS.
//
// /healthz, /readyz and /metrics come first, so that while start-up waits — for a
// cluster to elect leaders, say — /readyz says what for. Every start-up step against
// NATS retries with backoff until it succeeds or ctx ends (SIGTERM), except those that
// waiting cannot fix (a busy address, a stream created with other settings).
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("studyd starting", "config", redacted(cfg))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := intake.NewMetrics(reg)
	rd := &readiness{}
	rd.step("NATS "+natsAddress(cfg), 1, nil)
	stopHTTP, err := startHTTP(cfg.HTTP, reg, rd, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	err = start(ctx, cfg, rd, reg, metrics, log, stdout)
	if err != nil && ctx.Err() != nil {
		log.Info("studyd stopped during start-up", "waiting_for", rd.waitingFor(), "err", err)
		return nil
	}
	return err
}

// start connects, creates what studyd needs, runs it until ctx ends and drains.
func start(ctx context.Context, cfg config, rd *readiness, reg *prometheus.Registry, metrics *intake.Metrics, log *slog.Logger, stdout io.Writer) error {
	nc, shutdownNATS, err := connectNATS(ctx, cfg, rd, log)
	if err != nil {
		return err
	}
	defer shutdownNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"stream " + eventlog.EventsStream, func(ctx context.Context) error {
			_, err := eventlog.EnsureEventsStream(ctx, js, cfg.Replicas)
			return err
		}},
		{"stream " + client.CommandsStream, func(ctx context.Context) error {
			_, err := intake.EnsureCommandsStream(ctx, js, cfg.Partitions, cfg.Replicas)
			if errors.Is(err, intake.ErrStreamConfig) {
				return fmt.Errorf("%w: %w", errPermanent, err)
			}
			return err
		}},
		{"stream " + client.ParkedStream, func(ctx context.Context) error {
			_, err := intake.EnsureParkedStream(ctx, js, cfg.Replicas)
			return err
		}},
	}
	for _, s := range steps {
		if err := retry(ctx, rd, log, s.what, s.fn); err != nil {
			return err
		}
	}
	store := eventlog.NewStore(js)
	handler := app.NewHandler(store, app.Config{CacheSize: cfg.CacheSize, AtRange: cfg.atRange()})
	in := intake.New(nc, js, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: cfg.AckWait, Logger: log, Metrics: metrics, PoisonAfter: cfg.PoisonAfter,
	})
	if err := retry(ctx, rd, log, fmt.Sprintf("%d partition consumers", cfg.Partitions), in.Prepare); err != nil {
		return err
	}
	var submit *intake.SubmitService
	err = retry(ctx, rd, log, "endpoint "+client.SubmitSubject, func(context.Context) error {
		submit, err = intake.StartSubmitService(nc, js, handler)
		return err
	})
	if err != nil {
		return err
	}
	defer func() { _ = submit.Stop() }()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := startProjections(runCtx, cfg, &wg, nc, js, store, reg, rd, log); err != nil {
		cancel()
		return err
	}
	errs := make(chan error, 1)
	wg.Go(func() { errs <- in.Run(runCtx) })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "studyd_parked_commands", Help: "Commands parked in " + client.ParkedStream + " (studyctl parked lists them); -1 if unknown.",
	}, func() float64 {
		n, err := parkedCount(js)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	rd.ready(func() (problems, notes []string) {
		for _, s := range in.Stuck() {
			problems = append(problems, s.String())
		}
		if n, err := parkedCount(js); err != nil {
			notes = append(notes, "parked commands: unknown ("+err.Error()+")")
		} else if n > 0 {
			notes = append(notes, fmt.Sprintf("parked commands: %d in %s (studyctl parked)", n, client.ParkedStream))
		}
		return problems, notes
	})
	log.Info("studyd ready", "nats", natsAddress(cfg), "http", cfg.HTTP, "partitions", cfg.Partitions)
	fmt.Fprintf(stdout, "studyd ready: NATS %s, HTTP %s\n", natsAddress(cfg), cfg.HTTP)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	rd.stop()
	log.Info("studyd draining")
	// Submits in hand are answered first (the intake still runs to apply them), then
	// the intake finishes its commands in hand and the projector flushes.
	if err := submit.Stop(); err != nil {
		log.Warn("stop submit endpoint", "err", err)
	}
	cancel()
	wg.Wait()
	log.Info("studyd stopped")
	return runErr
}

// parkedCount asks how many commands are parked, within a second.
func parkedCount(js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return client.ParkedCount(ctx, js)
}

// connectNATS starts the embedded server (the default) or dials the configured one,
// retrying until it answers or ctx ends.
func connectNATS(ctx context.Context, cfg config, rd *readiness, log *slog.Logger) (*client.Conn, func(), error) {
	if !cfg.embedded() {
		var nc *client.Conn
		err := retry(ctx, rd, log, "NATS "+cfg.NATSURL, func(context.Context) error {
			var err error
			nc, err = client.Connect(cfg.Conn)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		return nc, func() { _ = nc.Drain() }, nil
	}
	rd.step("embedded nats-server on "+cfg.NATSListen, 1, nil)
	ns, err := embedded.StartContext(ctx, embedded.Config{
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		Listen:       cfg.NATSListen,
		Log:          log,
		SyncAlways:   cfg.Sync.Always,
		SyncInterval: cfg.Sync.Interval,
	})
	if err != nil {
		return nil, nil, err
	}
	nc, err := embedded.ConnectInProcess(ns, "studyd")
	if err != nil {
		ns.Shutdown()
		return nil, nil, err
	}
	log.Info("embedded nats-server started", "listen", cfg.NATSListen, "store", cfg.DataDir, "sync", cfg.Sync.String())
	return nc, func() {
		_ = nc.Drain()
		for i := 0; i < 50 && !nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}, nil
}

// startHTTP serves /healthz (the process is up), /readyz (it is taking commands) and
// /metrics on addr. An empty addr disables it.
func startHTTP(addr string, reg *prometheus.Registry, rd *readiness, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, body := rd.report()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redacted is the config as logged at start, secrets masked.
func redacted(cfg config) config {
	cfg.Conn = cfg.Conn.Redacted()
	return cfg
}

func natsAddress(cfg config) string {
	if cfg.embedded() {
		return "nats://" + cfg.NATSListen + " (embedded)"
	}
	return cfg.NATSURL
}
