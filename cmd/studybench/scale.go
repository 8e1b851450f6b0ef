package main

import (
	"context"
	"fmt"
	"time"
)

// scalePoint is the figures measured with a log of a given size.
type scalePoint struct {
	Target   uint64     `json:"target_events"`
	Messages uint64     `json:"messages"`
	Events   uint64     `json:"events"`
	E2E      throughput `json:"end_to_end"` // fresh clients' commands on this log
	// CPUPerCommand is this process's CPU (studyd, the embedded server and the
	// publisher) per end-to-end command: what the work costs, which a busy neighbour on
	// a shared machine moves much less than the rate.
	CPUPerCommand time.Duration `json:"cpu_per_command_ns"`
	// Replay and RawRead read the whole log the way an audit does, in a process of its
	// own over a socket (reader); their CPU per message counts that process's and the
	// server's.
	Replay  audited `json:"replay"`
	RawRead audited `json:"raw_read"`
	// InProcess is the same replay and raw read in this process, over its in-process
	// connection, as the scale run measured them before issue 15's eighth session.
	InProcess inProcessRead `json:"in_process"`
	Prefill   float64       `json:"prefill_commits_per_s"`
}

// inProcessRead is a replay and a raw read of the log in the measured process.
type inProcessRead struct {
	Replay        float64       `json:"replay_msgs_per_s"`
	RawRead       float64       `json:"raw_read_msgs_per_s"`
	CPUPerMessage time.Duration `json:"cpu_per_replayed_message_ns"`
}

// eventsPerCommit sizes the pre-fill fleet; the simulation averages about seven.
const eventsPerCommit = 7

// scale grows one log through the target sizes (in events) and, at each, measures
// end-to-end throughput with fresh clients and the audit replay of the whole log. The
// log is pre-filled with the commits the real handler decides for a simulated fleet,
// published straight to STUDYD_EVENTS (in order, so each commit's recorded positions
// are its stream sequences) by a generator in a child process, while studyd's
// projector folds them as they come.
func scale(ctx context.Context, cfg config, targets []uint64, progress func(string)) ([]scalePoint, error) {
	n, err := startNode(ctx, nodeConfig{Service: true, Partitions: cfg.Partitions, CacheSize: 100_000, Listen: true})
	if err != nil {
		return nil, err
	}
	defer n.stop()
	gen, err := startPrefiller(n.ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer gen.stop()
	auditor, err := startReader(n.ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer auditor.stop()

	maxCommits := int(targets[len(targets)-1]/eventsPerCommit) + 1
	clients := min(max(maxCommits/20, 1000), 100_000)
	days := maxCommits/(clients*3) + 2
	var out []scalePoint
	var commits, next uint64
	for i, target := range targets {
		progress(fmt.Sprintf("scale: pre-filling to %s events", count(target)))
		start := time.Now()
		before := commits
		if commits, err = gen.fill(clients, days, target, next); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		p := scalePoint{Target: target, Prefill: float64(commits-before) / time.Since(start).Seconds()}
		last, _, err := n.lastSeq(ctx)
		if err != nil {
			return nil, err
		}
		progress(fmt.Sprintf("scale: %s events: projector catching up", count(target)))
		if err := waitFor(ctx, 10*time.Minute, func() (bool, error) { return n.proj.Seq() >= last, nil }, n.failed); err != nil {
			return nil, fmt.Errorf("scale: projector catch-up: %w", err)
		}
		progress(fmt.Sprintf("scale: %s events: replay", count(target)))
		if p.RawRead, err = auditor.read(readRaw, last); err != nil {
			return nil, err
		}
		if p.Replay, err = auditor.read(readReplay, last); err != nil {
			return nil, err
		}
		p.Messages, p.Events = p.Replay.Last.Messages, p.Replay.Last.Events
		if p.InProcess, err = readInProcess(ctx, n, last); err != nil {
			return nil, err
		}

		progress(fmt.Sprintf("scale: %s events: end to end", count(target)))
		f, err := fleet(cfg.Clients, 30, uint64(100+i))
		if err != nil {
			return nil, err
		}
		cmds, err := commands(f, cfg.ScaleCommands)
		if err != nil {
			return nil, err
		}
		cpu := processCPU()
		tp, err := endToEnd(ctx, n, cmds, cfg.Patience)
		if err != nil {
			return nil, fmt.Errorf("scale %s: %w", count(target), err)
		}
		p.CPUPerCommand = (processCPU() - cpu) / time.Duration(len(cmds))
		p.E2E = tp
		next = tp.LastSeq // the pre-fill continues after the live commits
		out = append(out, p)
	}
	return out, nil
}

// readInProcess measures the replay and the raw read of the log up to last in this
// process.
func readInProcess(ctx context.Context, n *node, last uint64) (inProcessRead, error) {
	var r inProcessRead
	var err error
	if r.RawRead, err = repeatRate(func() (float64, error) { return rawRead(ctx, n.js, last) }); err != nil {
		return r, err
	}
	r.Replay, r.CPUPerMessage, err = cpuPerMessage(last, func() (float64, error) {
		res, err := auditReplay(ctx, n.js, true)
		return res.MsgsPerS, err
	})
	return r, err
}

// repeatRate runs a rate measurement until it has taken at least minMeasure in all,
// so that small logs are not timed on one short read, and returns the rates' median.
func repeatRate(measure func() (float64, error)) (float64, error) {
	var rates []float64
	start := time.Now()
	for len(rates) == 0 || (time.Since(start) < minMeasure && len(rates) < 50) {
		r, err := measure()
		if err != nil {
			return 0, err
		}
		rates = append(rates, r)
	}
	return median(rates), nil
}

// minMeasure is the least time a repeated measurement covers.
const minMeasure = time.Second
