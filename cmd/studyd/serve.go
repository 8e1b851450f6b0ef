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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/studyd/studyd/adapters/http/page"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/pagesource"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/internal/buildinfo"
)

// serve starts every part of studyd and runs until ctx ends, then drains in order:
// stop taking commands, finish those in hand, flush the projections, close NATS.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("studyd starting", "version", buildinfo.Version(), "config", cfg)

	nc, shutdownNATS, err := connectNATS(cfg, log)
	if err != nil {
		return err
	}
	defer shutdownNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := eventlog.EnsureEventsStream(ctx, js, cfg.Replicas); err != nil {
		return err
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, cfg.Partitions, cfg.Replicas); err != nil {
		return err
	}
	store := eventlog.NewStore(js)
	handler := app.NewHandler(store, app.Config{CacheSize: cfg.CacheSize, CacheBytes: cfg.CacheBytes, AtRange: cfg.atRange()})
	reads, err := newReadSide(cfg, nc, js, store, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(views.ProjectorCollectors(reads.projector)...)
	reg.MustRegister(buildInfoGauge(), intake.BacklogCollector(js, cfg.Partitions), views.StateCollector(js, log))
	in, submit := intake.New(nc, js, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: cfg.AckWait, Logger: log, Metrics: intake.NewMetrics(reg),
	}), intake.NewSubmitService(nc, js, handler, intake.SubmitConfig{})

	var ready atomic.Bool
	studyPage, err := page.New(page.Config{Views: pagesource.New(js), Checkpoints: pagesource.New(js),
		Fleet: pagesource.New(js), Logger: log})
	if err != nil {
		return err
	}
	stopHTTP, err := startHTTP(cfg.HTTP, reg, studyPage, &ready, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	// Every component runs until runCtx ends; the first to fail stops studyd (the
	// projector does not fail: runProjector retries it, and the views only lag).
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	run := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(runCtx); err != nil {
				select {
				case errs <- fmt.Errorf("%s: %w", name, err):
				default:
				}
			}
		})
	}
	run("intake", in.Run)
	run("submit", submit.Run)
	run("queries", reads.queries.Run)
	wg.Go(func() { runProjector(runCtx, reads.projector, log) })
	if reads.checkpoints != nil {
		run("checkpoints", reads.checkpoints.Run)
	}
	var runErr error
	for _, up := range []<-chan struct{}{submit.Ready(), reads.queries.Ready()} {
		select {
		case <-up:
		case runErr = <-errs:
		case <-ctx.Done():
		}
		if runErr != nil || ctx.Err() != nil {
			break
		}
	}
	if runErr == nil && ctx.Err() == nil {
		ready.Store(true)
		log.Info("studyd ready", "nats", natsAddress(cfg), "http", cfg.HTTP, "partitions", cfg.Partitions)
		fmt.Fprintf(stdout, "studyd ready: NATS %s, HTTP %s\n", natsAddress(cfg), cfg.HTTP)
		select {
		case <-ctx.Done():
		case runErr = <-errs:
		}
	}
	ready.Store(false)
	log.Info("studyd draining")
	cancel()
	wg.Wait()
	log.Info("studyd stopped")
	return runErr
}

// connectNATS starts the embedded server (the default) or dials the configured one.
func connectNATS(cfg config, log *slog.Logger) (*client.Conn, func(), error) {
	if !cfg.embedded() {
		nc, err := client.Connect(cfg.Conn)
		if err != nil {
			return nil, nil, err
		}
		return nc, func() { _ = nc.Drain() }, nil
	}
	ns, err := embedded.Start(embedded.Config{
		StoreDir: filepath.Join(cfg.DataDir, "jetstream"),
		Listen:   cfg.NATSListen,
	})
	if err != nil {
		return nil, nil, err
	}
	nc, err := embedded.ConnectInProcess(ns, "studyd")
	if err != nil {
		ns.Shutdown()
		return nil, nil, err
	}
	log.Info("embedded nats-server started", "listen", cfg.NATSListen, "store", cfg.DataDir)
	return nc, func() {
		_ = nc.Drain()
		for i := 0; i < 50 && !nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}, nil
}

// startHTTP serves /healthz (the process is up), /readyz (it is taking commands),
// Prometheus /metrics and, on every other path, the live study page (studyPage) on
// addr. An empty addr disables it.
func startHTTP(addr string, reg *prometheus.Registry, studyPage http.Handler, ready *atomic.Bool, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", studyPage)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	// The page's event streams never go idle: they end with this context, which
	// shutdown cancels first.
	streams, endStreams := context.WithCancel(context.Background())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return streams }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "err", err)
		}
	}()
	return func() {
		endStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}, nil
}

// buildInfoGauge is studyd_build_info: 1, labelled with the build's version.
func buildInfoGauge() prometheus.Collector {
	bi := buildinfo.Read()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "studyd_build_info", Help: "1, labelled with the running build: version, VCS revision and Go version.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	return g
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func natsAddress(cfg config) string {
	if cfg.embedded() {
		return "nats://" + cfg.NATSListen + " (embedded)"
	}
	return cfg.NATSURL
}
