package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/domain"
)

// instanceCounts are the studyd instances the instances scenario runs side by side.
var instanceCounts = []int{1, 2, 3}

// instances measures studyd scaled out on one server: 1, 2 and 3 instances (each its
// own connection, store, handler, intake and projector, as separate studyd processes
// would be) take the same fleet's commands end to end. Throughput should grow with
// the instances until the server, or here the machine's two cores, saturates; how the
// instances share the partitions is the intake's business, measured unchanged.
func (b *bencher) instances(ctx context.Context) error {
	f, err := fleet(b.cfg.Clients, 30, 3)
	if err != nil {
		return err
	}
	// Three fresh servers in a row, half of the end-to-end run each (25k by default,
	// 2–3 s at the rates of this machine): at 10k, about a second, one partition
	// handover moved a figure by a third (7,235 against 9.2–10.2 k commands/s).
	cmds, err := commands(f, min(b.cfg.Size/2, 25_000))
	if err != nil {
		return err
	}
	// Other clients' commands trickle in first, so that the partitions are shared out
	// before the measurement (see settle).
	warmFleet, err := fleet(b.cfg.Clients, 30, 4)
	if err != nil {
		return err
	}
	warm, err := commands(warmFleet, 8_000)
	if err != nil {
		return err
	}
	var one float64
	for _, k := range instanceCounts {
		b.progress(fmt.Sprintf("instances: %d commands, %s, %d partitions", len(cmds), plural(k, "instance"), b.cfg.Partitions))
		n, err := startNode(ctx, nodeConfig{Service: true, Partitions: b.cfg.Partitions, CacheSize: 100_000, Instances: k})
		if err != nil {
			return err
		}
		if k > 1 && !b.cfg.Quick {
			// The first instance holds every partition at first; the others get their
			// share within a few balancing rounds while commands flow. The partitions
			// handed on may all go to one instance, which hands some on in turn: with
			// three instances that can take a second handover.
			if err := settle(ctx, n, warm, time.Duration(k-1)*intake.ShareSettles, b.cfg.Patience); err != nil {
				n.stop()
				return err
			}
		}
		cpu0, wall0 := processCPU(), time.Now()
		tp, err := endToEnd(ctx, n, cmds, b.cfg.Patience)
		busy := float64(processCPU()-cpu0) / float64(time.Since(wall0))
		st := n.intakeStats()
		n.stop()
		if err != nil {
			return err
		}
		if k == instanceCounts[0] {
			one = tp.Visible
		}
		b.rep.Details[fmt.Sprintf("instances_%d", k)] = map[string]any{"throughput": tp, "intake": st, "cores_busy": busy}
		b.rep.add(row{Scenario: "instances", Figure: fmt.Sprintf("commands/s visible, %s, %d partitions", plural(k, "instance"), b.cfg.Partitions),
			Value: tp.Visible, Unit: "cmds/s", Baseline: "1 instance", BaseVal: one,
			Note: fmt.Sprintf("%d commands of %d simulated clients on one server; appended %s/s; settled by each instance: %s; intake: %s mean from receipt to ack, %.0f retries; this process (studyd and the server) kept %.2f of %d cores busy",
				len(cmds), b.cfg.Clients, grouped(tp.Appended), shares(st.PerInstance), st.Mean.Round(time.Microsecond), st.Retries, busy, runtime.NumCPU())})
	}
	return nil
}

// plural is "1 instance", "2 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// shares prints each instance's settled commands: 6000 / 4000.
func shares(per []float64) string {
	parts := make([]string, len(per))
	for i, v := range per {
		parts[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(parts, " / ")
}

// settle keeps other clients' commands trickling in for d (about 200 a second), each
// small group applied before the next: an instance learns which partitions it holds
// from their deliveries, and the server pins a partition handed on only when it next
// delivers from it, so without traffic the balancer could neither count nor hand on.
func settle(ctx context.Context, n *node, warm []domain.Command, d, patience time.Duration) error {
	const group, every = 50, 250 * time.Millisecond
	for end := time.Now().Add(d); time.Now().Before(end) && len(warm) >= group; warm = warm[group:] {
		next := time.Now().Add(every)
		if _, err := endToEnd(ctx, n, warm[:group], patience); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		time.Sleep(time.Until(next))
	}
	return nil
}
