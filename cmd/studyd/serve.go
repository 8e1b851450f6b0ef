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

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/app"
)

// serve starts every part of studyd and runs until ctx ends, then drains in order:
// stop taking commands, finish those in hand, flush the projections, close NATS.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("studyd starting", "config", redacted(cfg))

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
	handler := app.NewHandler(store, app.Config{CacheSize: cfg.CacheSize})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := intake.NewMetrics(reg)

	submit, err := intake.StartSubmitService(nc, js, store)
	if err != nil {
		return err
	}
	defer func() { _ = submit.Stop() }()

	var ready atomic.Bool
	stopHTTP, err := startHTTP(cfg.HTTP, reg, &ready, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	intake := intake.New(nc, js, store, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: cfg.AckWait, Logger: log, Metrics: metrics,
	})
	wg.Go(func() { errs <- intake.Run(runCtx) })
	if err := startProjections(runCtx, cfg, &wg, nc, js, store, reg, log); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	ready.Store(true)
	log.Info("studyd ready", "nats", natsAddress(cfg), "http", cfg.HTTP, "partitions", cfg.Partitions)
	fmt.Fprintf(stdout, "studyd ready: NATS %s, HTTP %s\n", natsAddress(cfg), cfg.HTTP)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
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

// startHTTP serves /healthz (the process is up), /readyz (it is taking commands) and
// /metrics on addr. An empty addr disables it.
func startHTTP(addr string, reg *prometheus.Registry, ready *atomic.Bool, log *slog.Logger) (func(), error) {
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
