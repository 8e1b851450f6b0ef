package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/internal/buildinfo"
)

// Secrets the embedded default keeps in its data directory, mode 0600.
const (
	adminKeyFile  = "admin.nk"   // the admin role's nkey seed
	commitKeyFile = "commit.key" // the commit key
)

// loadCommitKey reads the commit key: --commit-key, or on the embedded default
// <data>/commit.key, created on first start. On a cluster without --commit-key commits
// go unauthenticated, and studyd says so.
func loadCommitKey(cfg config, log *slog.Logger) (*audit.CommitKey, error) {
	path := cfg.CommitKey
	if path == "" && !cfg.embedded() {
		log.Warn("no --commit-key: commits are not authenticated, and verify cannot prove who wrote them")
		return nil, nil
	}
	if path == "" {
		path = filepath.Join(cfg.DataDir, commitKeyFile)
		if err := createCommitKey(path); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--commit-key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the commit key is readable by others: whoever reads it can write commits verify accepts", "file", path, "mode", fi.Mode().Perm())
	}
	k, err := audit.ParseCommitKey(b)
	if err != nil {
		return nil, fmt.Errorf("--commit-key %s: %w", path, err)
	}
	log.Info("commits authenticated", "commit_key", path, "key_id", k.ID())
	return k, nil
}

// createCommitKey writes a new commit key to path (mode 0600) unless a file is there.
func createCommitKey(path string) error {
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create commit key: %w", err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("create commit key %s: %w", path, werr)
	}
	return nil
}

// serve starts every part of studyd and runs until ctx ends, then drains in order:
// stop taking commands, finish those in hand, flush the projections, close NATS.
//
// /healthz, /readyz and /metrics come first, so that while start-up waits — for a
// cluster to elect leaders, say — /readyz says what for. Every start-up step against
// NATS retries with backoff until it succeeds or ctx ends (SIGTERM), except those that
// waiting cannot fix (a busy address, a stream created with other settings).
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("studyd starting", "version", buildinfo.Version(), "config", cfg)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(buildInfoGauge())
	rd := &readiness{}
	rd.step("NATS "+natsAddress(cfg), 1, nil)
	studyPage := &lateHandler{}
	stopHTTP, err := startHTTP(cfg.HTTP, reg, studyPage, rd, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	err = start(ctx, cfg, rd, reg, studyPage, log, stdout)
	if err != nil && ctx.Err() != nil {
		log.Info("studyd stopped during start-up", "waiting_for", rd.waitingFor(), "err", err)
		return nil
	}
	return err
}

// start connects, creates what studyd needs, runs it until ctx ends and drains.
func start(ctx context.Context, cfg config, rd *readiness, reg *prometheus.Registry, studyPage *lateHandler, log *slog.Logger, stdout io.Writer) error {
	nc, shutdownNATS, err := connectNATS(ctx, cfg, rd, log)
	if err != nil {
		return err
	}
	defer shutdownNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if cfg.ResetViews {
		log.Warn("--reset-views: deleting the views; they are rebuilt from the log as it is")
		if err := retry(ctx, rd, log, "reset views", func(ctx context.Context) error { return views.ResetViews(ctx, js) }); err != nil {
			return err
		}
	}
	// Views folded from a log that is gone or re-created must not silently continue on
	// a new one: checked before the stream is created or used, and again once it has a
	// first message (which records the log's identity).
	checkLog := func(ctx context.Context) error {
		err := views.CheckLog(ctx, js)
		if errors.Is(err, views.ErrLogLost) {
			return fmt.Errorf("%w: %w", errPermanent, err)
		}
		return err
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"the log's identity", checkLog},
		{"stream " + eventlog.EventsStream, func(ctx context.Context) error {
			_, err := eventlog.EnsureEventsStream(ctx, js, cfg.Replicas)
			return err
		}},
		{"the log's identity", checkLog},
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
	commitKey, err := loadCommitKey(cfg, log)
	if err != nil {
		return err
	}
	var storeOpts []eventlog.StoreOption
	if commitKey != nil {
		storeOpts = append(storeOpts, eventlog.WithCommitKey(commitKey))
	}
	if cfg.atomicAppends() {
		storeOpts = append(storeOpts, eventlog.WithAtomicBatches())
	}
	store := eventlog.NewStore(js, storeOpts...)
	handler := app.NewHandler(store, app.Config{CacheSize: cfg.CacheSize, CacheBytes: cfg.CacheBytes, AtRange: cfg.atRange(), Logger: log})
	reads, err := newReadSide(cfg, nc, js, store, commitKey, log)
	if err != nil {
		return err
	}
	reg.MustRegister(views.ProjectorCollectors(reads.projector)...)
	reg.MustRegister(intake.BacklogCollector(js, cfg.Partitions), views.StateCollector(js, log))
	in, submit := intake.New(nc, js, handler, intake.Config{
		Partitions: cfg.Partitions, AckWait: cfg.AckWait, Logger: log, Metrics: intake.NewMetrics(reg), PoisonAfter: cfg.PoisonAfter, Window: cfg.Window,
		Replies: app.ReplyPolicy{Prefixes: cfg.ReplyPrefixes},
	}), intake.NewSubmitService(nc, handler, intake.SubmitConfig{Batch: cfg.Window, Logger: log})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "studyd_parked_commands", Help: "Commands parked in " + client.ParkedStream + " (studyctl parked lists them); -1 if unknown.",
	}, func() float64 {
		n, err := parkedCount(js)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	if err := retry(ctx, rd, log, fmt.Sprintf("%d partition consumers", cfg.Partitions), in.Prepare); err != nil {
		return err
	}
	pg, err := page.New(page.Config{Views: pagesource.New(js), Checkpoints: pagesource.New(js),
		Fleet: pagesource.New(js), Logger: log})
	if err != nil {
		return err
	}
	studyPage.set(pg)

	// Every component runs until runCtx ends; the first to fail once started stops
	// studyd (the projector does not fail: runProjector retries it, and the views only
	// lag). Until a served component is ready, its failures are retried like every
	// start-up step.
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
	// The submit endpoint runs on its own context: at shutdown it stops first and
	// answers the requests in hand while the intake still applies their commands.
	submitCtx, stopSubmit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSubmit()
	submitDone := make(chan struct{})
	go func() {
		defer close(submitDone)
		if err := untilReady(submitCtx, rd, log, "endpoint "+client.SubmitSubject, submit.Ready(), submit.Run); err != nil {
			select {
			case errs <- fmt.Errorf("submit: %w", err):
			default:
			}
		}
	}()
	go func() { <-ctx.Done(); stopSubmit() }()
	run("intake", in.Run)
	run("queries", func(ctx context.Context) error {
		return untilReady(ctx, rd, log, "query endpoints", reads.queries.Ready(), reads.queries.Run)
	})
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
		select {
		case <-ctx.Done():
		case runErr = <-errs:
		}
	}
	rd.stop()
	log.Info("studyd draining")
	stopSubmit()
	<-submitDone
	cancel()
	wg.Wait()
	log.Info("studyd stopped")
	if runErr == nil && ctx.Err() != nil && !rd.isStarted() {
		return fmt.Errorf("start-up stopped while waiting for %s: %w", rd.waitingFor(), ctx.Err())
	}
	return runErr
}

// untilReady runs a served component. Until ready is closed its failures are start-up
// failures: retried with backoff while /readyz names the step. Once ready, its Run's
// result is returned as it is.
func untilReady(ctx context.Context, rd *readiness, log *slog.Logger, what string, ready <-chan struct{}, run func(context.Context) error) error {
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		err := run(ctx)
		select {
		case <-ready:
			return err
		default:
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
		rd.step(what, attempt, err)
		log.Warn("start-up step failed; retrying", "step", what, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// lateHandler serves the study page once it is set, 503 before.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "studyd is starting (see /readyz)", http.StatusServiceUnavailable)
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
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("--data: %w", err)
	}
	roles := &embedded.Roles{AdminKeyFile: filepath.Join(cfg.DataDir, adminKeyFile)}
	rd.step("embedded nats-server on "+cfg.NATSListen, 1, nil)
	ns, err := embedded.StartContext(ctx, embedded.Config{
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		Listen:       cfg.NATSListen,
		Roles:        roles,
		Log:          log,
		SyncAlways:   cfg.Sync.Always,
		SyncInterval: cfg.Sync.Interval,
	})
	if err != nil {
		return nil, nil, err
	}
	nc, err := roles.Connect(ns, "studyd")
	if err != nil {
		ns.Shutdown()
		return nil, nil, err
	}
	log.Info("embedded nats-server started", "listen", cfg.NATSListen, "store", cfg.DataDir, "sync", cfg.Sync.String(),
		"anonymous", embedded.RolePublisher, "admin_nkey", roles.AdminKeyFile)
	return nc, func() {
		_ = nc.Drain()
		for i := 0; i < 50 && !nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}, nil
}

// startHTTP serves /healthz (the process is up), /readyz (it is taking commands, or
// what start-up waits for, or which partition is stuck),
// Prometheus /metrics and, on every other path, the live study page (studyPage) on
// addr. An empty addr disables it.
func startHTTP(addr string, reg *prometheus.Registry, studyPage http.Handler, rd *readiness, log *slog.Logger) (func(), error) {
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
