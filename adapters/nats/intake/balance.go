package intake

import (
	"context"
	"time"
)

// balanceEvery is how often an instance compares the partitions it holds with its
// share.
const balanceEvery = 5 * time.Second

// yieldFor is how long a partition handed on is not pulled: past pinnedTTL, so that
// the server pins it to an instance waiting for it.
const yieldFor = pinnedTTL + time.Second

// ShareSettles is how long after commands start to flow the partitions are shared
// out: the balancing rounds that must agree, one more, and a handover.
const ShareSettles = (agreeingRounds+1)*balanceEvery + yieldFor

// agreeingRounds is how many rounds in a row must find this instance over its share
// before it hands partitions on: a pull request counted once (one that was about to
// expire, a dead instance's) does not move partitions back and forth.
const agreeingRounds = 2

// instancesWaiting counts the instances pulling a partition this one holds: the
// requests waiting on it are every other instance's and, while it is open, this one's
// own. Counting this one's own request always would count one instance short whenever
// the sample falls between two of its requests: with three instances, a share of 8
// instead of 6, which two instances can hold between them while the third stands by
// (a benchmark run ended 8,029 / 8,821 / 0).
func instancesWaiting(numWaiting int, ownOpen bool) int {
	if ownOpen {
		return max(numWaiting, 1)
	}
	return numWaiting + 1
}

// balance hands partitions on to other instances while this one holds more than its
// share. A pinned partition stays with the instance that first pulled it, so without
// this the first studyd to start would keep every partition and the others would only
// stand by. Every instance keeps a pull request waiting on every partition, so the
// requests waiting on a partition this instance holds count the instances: with N of
// them, each should hold at most ceil(P/N) partitions. An instance over its share stops
// pulling its highest-numbered ones for yieldFor; the server pins each to a waiting
// instance, whose fence keeps every client's commands in order across the handover.
func (in *Intake) balance(ctx context.Context, parts []*partition) {
	t := time.NewTicker(balanceEvery)
	defer t.Stop()
	over := 0    // rounds in a row over the share
	counted := 0 // the most instances counted in those rounds
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var held []*partition
		instances := 1
		for _, p := range parts {
			pin, _ := p.owner.Load().(string)
			if pin == "" {
				continue
			}
			info, err := p.cons.Info(ctx)
			if err != nil {
				continue
			}
			for _, g := range info.PriorityGroups {
				if g.Group == PriorityGroup && g.PinnedClientID == pin {
					held = append(held, p)
					instances = max(instances, instancesWaiting(info.NumWaiting, p.pulling.Load()))
				}
			}
		}
		share := (len(parts) + instances - 1) / instances
		if len(held) <= share {
			over, counted = 0, 0
			continue
		}
		// A request between two pulls is missed, so a count can fall short, never over:
		// the share handed on by is the agreeing rounds' highest count's.
		counted = max(counted, instances)
		if over++; over < agreeingRounds {
			continue
		}
		instances, share = counted, (len(parts)+counted-1)/counted
		over, counted = 0, 0
		for _, p := range held[share:] {
			p.yieldUntil.Store(time.Now().Add(yieldFor).UnixNano())
			p.owner.Store("")
		}
		in.cfg.Logger.Info("intake: handing partitions on", "held", len(held), "instances", instances, "share", share)
	}
}
