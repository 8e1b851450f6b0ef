package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
)

// bench runs the configured scenarios in order. A scenario that fails is reported
// and the others still run; a failed baseline skips the figures compared with it.
func bench(ctx context.Context, cfg config, progress func(string)) (*report, error) {
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	r := &report{Machine: thisMachine(), Config: cfg, Details: map[string]any{}, started: time.Now()}
	b := &bencher{cfg: cfg, rep: r, progress: progress}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"baseline", b.baseline}, {"e2e", b.endToEnd}, {"sync", b.sync}, {"instances", b.instances}, {"latency", b.latency},
		{"replay", b.replay}, {"memory", b.memory}, {"scale", b.scale},
		{"idempotency", b.idempotency},
	}
	for _, s := range steps {
		if !cfg.runs(s.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		progress(s.name)
		if err := s.fn(ctx); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", s.name, err))
		}
	}
	r.Machine.LoadEnd = loadAverage()
	r.Duration = time.Since(r.started)
	return r, nil
}

// bencher carries what later scenarios compare with.
type bencher struct {
	cfg      config
	rep      *report
	progress func(string)

	payloads   []payload
	rawPublish float64 // msgs/s
	maxRate    float64 // end-to-end commands/s with cfg.Partitions
}

// sample draws the commits the baselines publish: a simulated fleet through the real
// handler, so their sizes are studyd's.
func (b *bencher) sample(ctx context.Context) ([]payload, error) {
	if b.payloads != nil {
		return b.payloads, nil
	}
	ps, err := samplePayloads(ctx, min(b.cfg.Size, 20_000), b.cfg.Clients, 30, 7)
	if err != nil {
		return nil, err
	}
	var bytes int
	for _, p := range ps {
		bytes += len(p.data)
	}
	b.rep.Details["commit_bytes_avg"] = bytes / len(ps)
	b.payloads = ps
	return ps, nil
}

func (b *bencher) baseline(ctx context.Context) error {
	ps, err := b.sample(ctx)
	if err != nil {
		return err
	}
	n, err := startNode(ctx, nodeConfig{})
	if err != nil {
		return err
	}
	defer n.stop()
	_, js, err := n.client("raw")
	if err != nil {
		return err
	}
	defer js.Conn().Close()
	if b.rawPublish, err = rawPublish(ctx, js, ps, b.cfg.Size); err != nil {
		return err
	}
	avg := b.rep.Details["commit_bytes_avg"]
	b.rep.add(row{Scenario: "baseline", Figure: "raw JetStream async publish", Value: b.rawPublish, Unit: "msgs/s",
		Note: fmt.Sprintf("%d messages of studyd's commits (avg %v B) to STUDYD_EVENTS, %d acks outstanding", b.cfg.Size, avg, asyncPending)})
	last, _, err := n.lastSeq(ctx)
	if err != nil {
		return err
	}
	read, err := repeatRate(func() (float64, error) { return rawRead(ctx, js, last) })
	if err != nil {
		return err
	}
	b.rep.add(row{Scenario: "baseline", Figure: "raw ordered-consumer read", Value: read, Unit: "msgs/s"})
	for _, window := range []int{1, 256} {
		rate, stalled, err := workQueueDrain(ctx, ps, b.cfg.Size, b.cfg.Partitions, window)
		if err != nil {
			return err
		}
		note := map[bool]string{true: "the intake's pattern before issue 15 (MaxAckPending 1, pulls of 1) with no work: its ceiling",
			false: "the same queue with a window of 256 per partition and batched pulls: about the windowed intake's pattern (window 128), with no work"}[window == 1]
		if stalled > 0 {
			note += fmt.Sprintf("; STALLED: %d messages were never delivered (rate until the stall)", stalled)
		}
		b.rep.add(row{Scenario: "baseline", Figure: fmt.Sprintf("STUDYD_CMDS drain, %d partitions, %d in flight each", b.cfg.Partitions, window),
			Value: rate, Unit: "msgs/s", Baseline: "raw publish", BaseVal: b.rawPublish, Note: note})
	}
	return nil
}

func (b *bencher) endToEnd(ctx context.Context) error {
	f, err := fleet(b.cfg.Clients, 30, 3)
	if err != nil {
		return err
	}
	cmds, err := commands(f, b.cfg.Size)
	if err != nil {
		return err
	}
	key, err := benchCommitKey()
	if err != nil {
		return err
	}
	var authenticated throughput
	for i, parts := range append([]int{b.cfg.Partitions}, b.cfg.MorePartitions...) {
		b.progress(fmt.Sprintf("e2e: %d commands, %d partitions", len(cmds), parts))
		n, err := startNode(ctx, nodeConfig{Service: true, Partitions: parts, CacheSize: 100_000, CommitKey: key})
		if err != nil {
			return err
		}
		tp, err := endToEnd(ctx, n, cmds, b.cfg.Patience)
		st := n.intakeStats()
		n.stop()
		if err != nil {
			return err
		}
		if i == 0 {
			b.maxRate = tp.Visible
			authenticated = tp
		}
		b.rep.Details[fmt.Sprintf("e2e_%d_partitions", parts)] = map[string]any{"throughput": tp, "intake": st}
		b.rep.add(row{Scenario: "end to end", Figure: fmt.Sprintf("commands/s visible, %d partitions", parts),
			Value: tp.Visible, Unit: "cmds/s", Baseline: "raw publish", BaseVal: b.rawPublish, BaseUnit: "msgs/s", Goal: &goal{MinRatio: 0.30},
			Note: fmt.Sprintf("%d commands of %d simulated clients: published %s/s, appended %s/s; intake: %s mean from receipt to ack; %s",
				len(cmds), b.cfg.Clients, grouped(tp.Published), grouped(tp.Appended), st.Mean.Round(time.Microsecond), tp.projectorNote())})
	}
	return b.unauthenticated(ctx, cmds, authenticated)
}

// unauthenticated prices the commit key: the first end-to-end run again, the same
// commands and partitions, with commits appended without their HMAC.
func (b *bencher) unauthenticated(ctx context.Context, cmds []domain.Command, with throughput) error {
	b.progress(fmt.Sprintf("e2e: %d commands, %d partitions, commits not authenticated", len(cmds), b.cfg.Partitions))
	n, err := startNode(ctx, nodeConfig{Service: true, Partitions: b.cfg.Partitions, CacheSize: 100_000})
	if err != nil {
		return err
	}
	tp, err := endToEnd(ctx, n, cmds, b.cfg.Patience)
	n.stop()
	if err != nil {
		return err
	}
	b.rep.Details["e2e_unauthenticated"] = tp
	b.rep.add(row{Scenario: "end to end", Figure: fmt.Sprintf("commands/s visible, %d partitions, authenticated commits", b.cfg.Partitions),
		Value: with.Visible, Unit: "cmds/s", Baseline: "same run, no HMAC", BaseVal: tp.Visible, BaseUnit: "cmds/s",
		Note: fmt.Sprintf("the price of Studyd-Mac (HMAC-SHA256 per commit and rejection, checked again by the projector): appended %s/s with, %s/s without",
			grouped(with.Appended), grouped(tp.Appended))})
	return nil
}

// benchCommitKey is a fresh commit key, as studyd makes on first start.
func benchCommitKey() (*audit.CommitKey, error) {
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return audit.ParseCommitKey(b)
}

func (b *bencher) latency(ctx context.Context) error {
	if b.maxRate == 0 {
		return fmt.Errorf("no end-to-end rate to take half of (run the e2e scenario too)")
	}
	half, err := b.latencyAt(ctx, b.maxRate/2)
	if err != nil {
		return err
	}
	// The same at a tenth of the maximum: how much of the tail at half is waiting for
	// the machine's two cores (shared with the server and the publisher).
	tenth, err := b.latencyAt(ctx, b.maxRate/10)
	if err != nil {
		return err
	}
	b.rep.Details["latency"] = half
	b.rep.Details["latency_tenth"] = tenth
	note := fmt.Sprintf("%d commands at %s/s (half the end-to-end max; achieved %s/s), %d partitions",
		half.Commands, grouped(half.Rate), grouped(half.Achieved), b.cfg.Partitions)
	b.rep.add(row{Scenario: "latency", Figure: "publish → appended p50", Value: ms(half.AppendP50), Unit: "ms", Note: note})
	b.rep.add(row{Scenario: "latency", Figure: "publish → appended p99", Value: ms(half.AppendP99), Unit: "ms", Goal: &goal{MaxValue: 5}})
	b.rep.add(row{Scenario: "latency", Figure: "publish → visible p50", Value: ms(half.VisibleP50), Unit: "ms"})
	b.rep.add(row{Scenario: "latency", Figure: "publish → visible p99", Value: ms(half.VisibleP99), Unit: "ms", Goal: &goal{MaxValue: 100},
		Note: fmt.Sprintf("visible = the projector's checkpoint covers the commit (polled every %s; the projector flushes every %s)", visiblePoll, views.DefaultFlushInterval)})
	b.rep.add(row{Scenario: "latency", Figure: "publish → appended p99, a tenth of max load", Value: ms(tenth.AppendP99), Unit: "ms",
		Note: fmt.Sprintf("%d commands at %s/s (a tenth of the end-to-end max); p50 %.2f ms, visible p50 / p99 %.1f / %.1f ms",
			tenth.Commands, grouped(tenth.Rate), ms(tenth.AppendP50), ms(tenth.VisibleP50), ms(tenth.VisibleP99))})
	return nil
}

// latencyAt measures latencyUnderLoad at rate on a fresh server, for --duration.
func (b *bencher) latencyAt(ctx context.Context, rate float64) (latencyResult, error) {
	key, err := benchCommitKey()
	if err != nil {
		return latencyResult{}, err
	}
	n, err := startNode(ctx, nodeConfig{Service: true, Partitions: b.cfg.Partitions, CacheSize: 100_000, CommitKey: key})
	if err != nil {
		return latencyResult{}, err
	}
	defer n.stop()
	f, err := fleet(b.cfg.Clients, 30, 4)
	if err != nil {
		return latencyResult{}, err
	}
	cmds, err := commands(f, max(100, int(rate*b.cfg.Duration.Seconds())))
	if err != nil {
		return latencyResult{}, err
	}
	return latencyUnderLoad(ctx, n, cmds, rate)
}

func (b *bencher) replay(ctx context.Context) error {
	n, err := startNode(ctx, nodeConfig{Listen: true})
	if err != nil {
		return err
	}
	defer n.stop()
	_, js, err := n.client("prefill")
	if err != nil {
		return err
	}
	defer js.Conn().Close()
	// A log of chained commits, as studyd writes it: the real handler's commits for a
	// simulated fleet, published in order.
	ps, err := samplePayloads(ctx, b.cfg.Size, b.cfg.Clients, 30, 9)
	if err != nil {
		return err
	}
	if err := publishAll(ctx, js, len(ps), func(i int) payload { return ps[i] }); err != nil {
		return err
	}
	last, _, err := n.lastSeq(ctx)
	if err != nil {
		return err
	}
	read, readCPU, err := cpuPerMessage(last, func() (float64, error) { return rawRead(ctx, js, last) })
	if err != nil {
		return err
	}
	for _, parallel := range []bool{false, true} {
		var res replayResult
		rate, cpu, err := cpuPerMessage(last, func() (float64, error) {
			r, err := auditReplay(ctx, js, parallel)
			res = r
			return r.MsgsPerS, err
		})
		if err != nil {
			return err
		}
		how, g := "sequential (Replay)", (*goal)(nil)
		if parallel {
			how, g = fmt.Sprintf("parallel decode (ReplayLean, %d workers)", runtime.GOMAXPROCS(0)), &goal{MinRatio: 0.85}
		}
		b.rep.Details["replay_"+map[bool]string{false: "sequential", true: "parallel"}[parallel]] = res
		b.rep.add(row{Scenario: "audit replay", Figure: how, Value: rate, Unit: "msgs/s",
			Baseline: "raw read", BaseVal: read, Goal: g,
			Note: fmt.Sprintf("decode + verify + all folds over %d commits, %d events (%s events/s); rates are medians of repeated whole-log reads; process CPU per message %.1f µs, the raw read's %.1f µs (ratio %.2f)",
				res.Messages, res.Events, grouped(res.EvtsPerS*rate/res.MsgsPerS), micros(cpu), micros(readCPU), float64(readCPU)/float64(cpu))})
	}
	// The parallel replay again as an audit runs (studyctl verify): in a process of its
	// own, over a socket, against the raw read made the same way.
	auditor, err := startReader(n.ns.ClientURL())
	if err != nil {
		return err
	}
	defer auditor.stop()
	raw, err := auditor.read(readRaw, last)
	if err != nil {
		return err
	}
	rep, err := auditor.read(readReplay, last)
	if err != nil {
		return err
	}
	b.rep.add(row{Scenario: "audit replay", Figure: "parallel decode, own process (as studyctl verify)", Value: rep.Rate, Unit: "msgs/s",
		Baseline: "raw read, own process", BaseVal: raw.Rate, Goal: &goal{MinRatio: 0.85},
		Note: fmt.Sprintf("the reader in a child process over a loopback socket; CPU per message (the reader's and the server's) %.1f µs, the raw read's %.1f µs (ratio %.2f)",
			micros(rep.CPUPerMessage), micros(raw.CPUPerMessage), float64(raw.CPUPerMessage)/float64(rep.CPUPerMessage))})
	return nil
}

func (b *bencher) memory(ctx context.Context) error {
	res, err := memory(ctx, b.cfg.Enrollments)
	if err != nil {
		return err
	}
	b.rep.Details["memory"] = res
	e := res.Enrollments
	b.rep.add(row{Scenario: "memory", Figure: "studyd client cache per 1M enrollments", Value: perMillion(res.CacheHeap, e), Unit: "MB",
		Goal: &goal{MaxValue: 300},
		Note: fmt.Sprintf("%d enrollments of %d clients (%d commits): cache heap %.0f MB (the cache counts %.0f MB against --cache-bytes); process RSS %.0f MB (generator included)",
			e, res.Clients, res.Commits, mb(res.CacheHeap), mb(res.CacheCounted), mb(res.ProcessRSS))})
	b.rep.add(row{Scenario: "memory", Figure: "decoded client states alone per 1M enrollments", Value: perMillion(res.StateHeap, e), Unit: "MB",
		Note: "what a cache of states (without each client's last commit's events and envelope) would hold"})
	b.rep.add(row{Scenario: "memory", Figure: "nats-server RSS per 1M enrollments", Value: perMillion(res.ServerRSS-min(res.ServerRSS, res.ServerRSS0), e), Unit: "MB",
		Note: fmt.Sprintf("separate process: RSS %.0f MB holding the log (%.0f MB of commits), %.0f MB empty",
			mb(res.ServerRSS), mb(res.LogBytes), mb(res.ServerRSS0))})
	return nil
}

func (b *bencher) scale(ctx context.Context) error {
	pts, err := scale(ctx, b.cfg, b.cfg.Scale, b.progress)
	if err != nil {
		return err
	}
	b.rep.Details["scale"] = pts
	first := pts[0]
	for _, p := range pts {
		size := fmt.Sprintf("%s events (%d msgs)", count(p.Target), p.Messages)
		var g *goal
		if p.Target != first.Target {
			g = &goal{MinRatio: 0.8}
		}
		at := "at " + count(first.Target)
		b.rep.add(row{Scenario: "scale " + count(p.Target), Figure: "end-to-end commands/s", Value: p.E2E.Visible, Unit: "cmds/s",
			Baseline: at, BaseVal: first.E2E.Visible, Goal: g,
			Note: fmt.Sprintf("log of %s; %d commands of fresh clients, appended %s/s (%s); pre-filled at %s commits/s",
				size, b.cfg.ScaleCommands, grouped(p.E2E.Appended), p.E2E.projectorNote(), grouped(p.Prefill))})
		b.rep.add(row{Scenario: "scale " + count(p.Target), Figure: "audit replay", Value: p.Replay.Rate, Unit: "msgs/s",
			Baseline: at, BaseVal: first.Replay.Rate, Goal: g,
			Note: fmt.Sprintf("as an audit runs (studyctl verify): its own process, over a socket; %s events/s; raw read of the same log %s msgs/s (%.2f of its rate at %s; replay/raw %.2f); in this process instead: replay %s msgs/s, raw read %s (replay/raw %.2f)",
				grouped(p.Replay.Last.EvtsPerS*p.Replay.Rate/p.Replay.Last.MsgsPerS), grouped(p.RawRead.Rate), p.RawRead.Rate/first.RawRead.Rate, count(first.Target), p.Replay.Rate/p.RawRead.Rate,
				grouped(p.InProcess.Replay), grouped(p.InProcess.RawRead), p.InProcess.Replay/p.InProcess.RawRead)})
		// The same two figures as work done per second of CPU: what each costs, and so
		// whether that cost grows with the log, less moved by a busy neighbour.
		b.rep.add(row{Scenario: "scale " + count(p.Target), Figure: "end-to-end commands per CPU-second", Value: perCPUSecond(p.CPUPerCommand), Unit: "cmds/cpu-s",
			Baseline: at, BaseVal: perCPUSecond(first.CPUPerCommand), Goal: g,
			Note: fmt.Sprintf("%.0f µs of this process's CPU (studyd, the embedded server, the publisher) a command", micros(p.CPUPerCommand))})
		b.rep.add(row{Scenario: "scale " + count(p.Target), Figure: "audit replay messages per CPU-second", Value: perCPUSecond(p.Replay.CPUPerMessage), Unit: "msgs/cpu-s",
			Baseline: at, BaseVal: perCPUSecond(first.Replay.CPUPerMessage), Goal: g,
			Note: fmt.Sprintf("%.1f µs of CPU a message, the reader's and the server's; the raw read's %.1f µs; in this process instead %.1f µs (%.2f of its figure at %s)",
				micros(p.Replay.CPUPerMessage), micros(p.RawRead.CPUPerMessage), micros(p.InProcess.CPUPerMessage),
				float64(first.InProcess.CPUPerMessage)/float64(p.InProcess.CPUPerMessage), count(first.Target))})
	}
	return nil
}

// perCPUSecond is how many a second of CPU does, at cost each.
func perCPUSecond(cost time.Duration) float64 {
	if cost <= 0 {
		return 0
	}
	return float64(time.Second) / float64(cost)
}

// sync prices studyd's --sync always (the default) against the server's 2-minute
// background sync, in this run: raw publishes to STUDYD_EVENTS — one at a time, and in
// atomic batches (one fsync per batch), the durable path's own baseline — and the
// end-to-end command path, each under both settings, on fresh stores.
func (b *bencher) sync(ctx context.Context) error {
	ps, err := b.sample(ctx)
	if err != nil {
		return err
	}
	f, err := fleet(b.cfg.Clients, 30, 3)
	if err != nil {
		return err
	}
	n := min(b.cfg.Size, 20_000)
	if b.cfg.Quick {
		// A smoke test: an fsync per write on a loaded machine under -race manages a few
		// dozen a second, so a quick run's 2,000 would not finish in its patience.
		n = min(n, 200)
	}
	// Batches pay an fsync per 500 messages, so they can take a whole run's worth
	// (a quick run's 2,000 are still four batches).
	batched := b.cfg.Size
	cmds, err := commands(f, n)
	if err != nil {
		return err
	}
	raw := map[bool]float64{}
	atomicRaw := map[bool]float64{}
	e2e := map[bool]float64{}
	submitted := map[bool]throughput{}
	for _, always := range []bool{false, true} {
		mode := map[bool]string{false: "--sync 2m", true: "--sync always"}[always]
		b.progress("sync: raw publish, " + mode)
		if raw[always], err = onRawNode(ctx, always, func(js jetstream.JetStream) (float64, error) {
			return rawPublish(ctx, js, ps, n)
		}); err != nil {
			return err
		}
		b.progress(fmt.Sprintf("sync: raw atomic batches of %d, %s", atomicBatch, mode))
		if atomicRaw[always], err = onRawNode(ctx, always, func(js jetstream.JetStream) (float64, error) {
			if err := enableAtomicPublish(ctx, js); err != nil {
				return 0, err
			}
			return rawAtomicPublish(ctx, js.Conn(), ps, batched, atomicBatch, atomicInFlight)
		}); err != nil {
			return err
		}
		b.progress(fmt.Sprintf("sync: e2e %d commands, %s", len(cmds), mode))
		node, err := startNode(ctx, nodeConfig{Service: true, Partitions: b.cfg.Partitions, CacheSize: 100_000, SyncAlways: always})
		if err != nil {
			return err
		}
		tp, err := endToEnd(ctx, node, cmds, b.cfg.Patience)
		node.stop()
		if err != nil {
			return err
		}
		e2e[always] = tp.Visible
		b.progress(fmt.Sprintf("sync: studyd.submit %d commands, %s", len(cmds), mode))
		node, err = startNode(ctx, nodeConfig{Service: true, Partitions: b.cfg.Partitions, CacheSize: 100_000, SyncAlways: always})
		if err != nil {
			return err
		}
		tp, err = durableSubmit(ctx, node, cmds, b.cfg.Patience)
		node.stop()
		if err != nil {
			return err
		}
		submitted[always] = tp
	}
	b.rep.add(row{Scenario: "sync", Figure: "studyd.submit commands/s answered, --sync always", Value: submitted[true].Appended, Unit: "cmds/s",
		Baseline: "the same, --sync 2m", BaseVal: submitted[false].Appended,
		Note: fmt.Sprintf("%d commands, %d senders waiting for their answers; answered once the batch holding the commit is stored; visible %.0f/s and %.0f/s",
			len(cmds), submitters, submitted[true].Visible, submitted[false].Visible)})
	b.rep.add(row{Scenario: "sync", Figure: "raw JetStream async publish, --sync always", Value: raw[true], Unit: "msgs/s",
		Baseline: "the same, --sync 2m", BaseVal: raw[false],
		Note: fmt.Sprintf("%d commits to STUDYD_EVENTS, %d acks outstanding; always = fsync before each ack", n, asyncPending)})
	b.rep.add(row{Scenario: "sync", Figure: fmt.Sprintf("raw atomic batches of %d, --sync always", atomicBatch), Value: atomicRaw[true], Unit: "msgs/s",
		Baseline: "the same, --sync 2m", BaseVal: atomicRaw[false],
		Note: fmt.Sprintf("%d commits to STUDYD_EVENTS (AllowAtomicPublish) in atomic batches, %d open at once; %.1f× the async publishes with --sync always (one fsync per batch, not per message)",
			batched, atomicInFlight, atomicRaw[true]/raw[true])})
	b.rep.add(row{Scenario: "sync", Figure: fmt.Sprintf("commands/s visible, %d partitions, --sync always", b.cfg.Partitions), Value: e2e[true], Unit: "cmds/s",
		Baseline: "the same, --sync 2m", BaseVal: e2e[false],
		Note: fmt.Sprintf("%d commands of %d simulated clients; the price of an acknowledgement that survives power loss", len(cmds), b.cfg.Clients)})
	b.rep.add(row{Scenario: "sync", Figure: fmt.Sprintf("commands/s visible, %d partitions, --sync always", b.cfg.Partitions), Value: e2e[true], Unit: "cmds/s",
		Baseline: "raw atomic batches, --sync always", BaseVal: atomicRaw[true], BaseUnit: "msgs/s", Goal: &goal{MinRatio: 0.30},
		Note: "durable end to end through STUDYD_CMDS against the engine's fastest durable write (the issue's goal: ≥ 0.30)"})
	b.rep.add(row{Scenario: "sync", Figure: "studyd.submit commands/s visible, --sync always", Value: submitted[true].Visible, Unit: "cmds/s",
		Baseline: "raw atomic batches, --sync always", BaseVal: atomicRaw[true], BaseUnit: "msgs/s", Goal: &goal{MinRatio: 0.30},
		Note: fmt.Sprintf("the durable path through studyd.submit against the same baseline: answered %s/s, visible %s/s",
			grouped(submitted[true].Appended), grouped(submitted[true].Visible))})
	return nil
}

// onRawNode runs measure against a fresh server holding only the events stream
// (fsyncing every write if always), through a connection of its own.
func onRawNode(ctx context.Context, always bool, measure func(jetstream.JetStream) (float64, error)) (float64, error) {
	node, err := startNode(ctx, nodeConfig{SyncAlways: always})
	if err != nil {
		return 0, err
	}
	defer node.stop()
	_, js, err := node.client("raw")
	if err != nil {
		return 0, err
	}
	defer js.Conn().Close()
	return measure(js)
}
