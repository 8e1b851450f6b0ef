package simulate

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

// Fleet generates the commands of a simulated fleet one at a time, in time order: runs
// slot by slot (each client runs at its own fixed offset into every run interval) with
// the user's and operator's signals merged in at their times. Only the clients' small
// states are held, never the commands. A Fleet is not safe for concurrent use.
type Fleet struct {
	cfg     Config
	rng     *rand.Rand
	recipes []Recipe
	clients []client
	order   []int // client indexes by run offset: the order of runs within a slot
	slots   int   // run slots in the simulation
	end     time.Time

	slot, pos int         // the next run: slot, and position in order
	signals   signalQueue // pending signals, earliest first
	seq       uint64      // tie-breaker keeping the queue deterministic
	tally     Tally
	err       error
}

// client is one simulated Firefox profile.
type client struct {
	id       domain.ClientID
	offset   time.Duration         // its runs happen this long into each run interval
	joinSlot int                   // new profiles appear during the simulation
	version  domain.FirefoxVersion // the Firefox it runs (0: it does not say)
	n        int                   // commands generated so far; numbers the command ids
	last     time.Time             // time of its newest command
	state    domain.ClientState
}

// New draws a fleet: the recipe catalogue, then each client's id, run offset and the
// slot its profile appears (a tenth of the clients are new profiles during the run).
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed5eed5eed5eed))
	f := &Fleet{
		cfg:     cfg,
		rng:     rng,
		recipes: newCatalogue(rng, cfg),
		clients: make([]client, cfg.Clients),
		order:   make([]int, cfg.Clients),
		slots:   cfg.Days * cfg.RunsPerDay,
		end:     cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour),
		tally:   newTally(),
	}
	intervalMS := cfg.interval().Milliseconds()
	for i := range f.clients {
		c := &f.clients[i]
		c.id = newClientID(rng)
		c.offset = time.Duration(rng.Int64N(intervalMS)) * time.Millisecond
		if rng.Float64() < 0.1 {
			c.joinSlot = rng.IntN(f.slots)
		}
		c.state = domain.ClientState{Client: c.id}
		f.order[i] = i
	}
	if len(cfg.Versions) > 0 {
		// Drawn after everything else, from a stream of their own, so that a fleet's
		// clients and recipes do not depend on its version mix.
		vrng := rand.New(rand.NewPCG(cfg.Seed, 0xf1ef0f1ef0f1ef0))
		total := 0.0
		for _, v := range cfg.Versions {
			total += v.Share
		}
		for i := range f.clients {
			u := vrng.Float64() * total
			for _, v := range cfg.Versions {
				if u < v.Share {
					f.clients[i].version = v.Version
					break
				}
				u -= v.Share
			}
		}
	}
	slices.SortStableFunc(f.order, func(a, b int) int { return cmp.Compare(f.clients[a].offset, f.clients[b].offset) })
	return f, nil
}

// newClientID draws a version-4 UUID: the shape of Firefox's normandy user id, and a
// valid subject token.
func newClientID(rng *rand.Rand) domain.ClientID {
	hi, lo := rng.Uint64(), rng.Uint64()
	return domain.ClientID(fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
		hi>>32, (hi>>16)&0xffff, hi&0x0fff, 0x8000|(lo>>48)&0x3fff, lo&0xffffffffffff))
}

// Recipes returns the simulated server's recipe catalogue.
func (f *Fleet) Recipes() []Recipe { return slices.Clone(f.recipes) }

// Clients returns the simulated client ids, in the order they were drawn.
func (f *Fleet) Clients() []domain.ClientID {
	out := make([]domain.ClientID, len(f.clients))
	for i, c := range f.clients {
		out[i] = c.id
	}
	return out
}

// Count estimates how many commands the fleet generates in all (for progress bars):
// the expected number of runs, and of the signals that find a target.
func (f *Fleet) Count() int {
	var runs float64
	for _, c := range f.clients {
		runs += float64(f.slots-c.joinSlot) * f.cfg.Online
	}
	return int(runs * (1 + f.cfg.EventRate*0.6))
}

// Err returns why generation stopped early: the decider refused a generated command,
// which is a bug of the simulator (or of the decider), never of the caller.
func (f *Fleet) Err() error { return f.err }

// Tally returns what the commands generated so far decided: studyd, applying them in
// order, records exactly these events.
func (f *Fleet) Tally() Tally { return f.tally.clone() }

// Each calls fn with every remaining command in order, stopping at fn's first error.
func (f *Fleet) Each(fn func(domain.Command) error) error {
	for {
		cmd, ok := f.Next()
		if !ok {
			return f.err
		}
		if err := fn(cmd); err != nil {
			return err
		}
	}
}

// Next returns the next command, or false when the simulation is over (or Err is set).
// Each command is decided against its client's state before it is returned, so the
// next commands fit the state it leads to.
func (f *Fleet) Next() (domain.Command, bool) {
	for f.err == nil {
		cmd, ci, status := f.generate()
		switch status {
		case genDone:
			return domain.Command{}, false
		case genSkip:
			continue
		}
		c := &f.clients[ci]
		d, err := fsm.Decide(context.Background(), c.state, cmd)
		if err != nil {
			f.err = fmt.Errorf("simulate: the decider refuses generated command %s: %w", cmd.CommandID, err)
			return domain.Command{}, false
		}
		c.state, c.last = d.State, cmd.At
		f.tally.Add(cmd.Type, d.Events)
		return cmd, true
	}
	return domain.Command{}, false
}

type genStatus int

const (
	genCommand genStatus = iota
	genSkip              // nothing to send this time (offline, or a signal with no target)
	genDone
)

// generate produces the next command in time order: the earlier of the next run and
// the next pending signal.
func (f *Fleet) generate() (domain.Command, int, genStatus) {
	runAt, haveRun := f.peekRun()
	if f.signals.Len() > 0 && (!haveRun || f.signals[0].at.Before(runAt)) {
		s := heap.Pop(&f.signals).(pending)
		cmd, ok := f.signal(s.client, s.at)
		if !ok {
			return domain.Command{}, 0, genSkip
		}
		return cmd, s.client, genCommand
	}
	if !haveRun {
		return domain.Command{}, 0, genDone
	}
	ci, slot := f.order[f.pos], f.slot
	if f.pos++; f.pos == len(f.order) {
		f.pos, f.slot = 0, f.slot+1
	}
	if slot < f.clients[ci].joinSlot || f.rng.Float64() >= f.cfg.Online {
		return domain.Command{}, 0, genSkip
	}
	cmd := f.run(ci, slot/f.cfg.RunsPerDay, runAt)
	if f.rng.Float64() < f.cfg.EventRate {
		// A signal before the client's next run: between one minute and one interval on.
		window := f.cfg.interval().Milliseconds() - 60_000 - 1
		at := runAt.Add(time.Minute + time.Duration(f.rng.Int64N(max(1, window)))*time.Millisecond)
		if at.Before(f.end) {
			f.seq++
			heap.Push(&f.signals, pending{at: at, client: ci, seq: f.seq})
		}
	}
	return cmd, ci, genCommand
}

// peekRun returns the time of the next run slot, or false after the last slot.
func (f *Fleet) peekRun() (time.Time, bool) {
	if f.slot >= f.slots {
		return time.Time{}, false
	}
	c := f.clients[f.order[f.pos]]
	return f.cfg.Start.Add(time.Duration(f.slot)*f.cfg.interval() + c.offset), true
}

// newCommand starts client ci's next command at time at (never before its last one).
func (f *Fleet) newCommand(ci int, t domain.CommandType, at time.Time) domain.Command {
	c := &f.clients[ci]
	c.n++
	if !at.After(c.last) {
		at = c.last.Add(time.Millisecond)
	}
	cmd := domain.Command{Type: t, CommandID: fmt.Sprintf("%s-%d", c.id, c.n), ClientID: c.id, At: at}
	if c.version != 0 {
		cmd.FirefoxVersion = fmt.Sprintf("%d.0", c.version)
	}
	return cmd
}

// Versions returns each client's Firefox version, in the order of Clients.
func (f *Fleet) Versions() []domain.FirefoxVersion {
	out := make([]domain.FirefoxVersion, len(f.clients))
	for i, c := range f.clients {
		out[i] = c.version
	}
	return out
}

// pending is a signal due for a client at a time.
type pending struct {
	at     time.Time
	client int
	seq    uint64
}

// signalQueue is a min-heap of pending signals by time, then scheduling order.
type signalQueue []pending

func (q signalQueue) Len() int { return len(q) }
func (q signalQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q signalQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *signalQueue) Push(x any)   { *q = append(*q, x.(pending)) }
func (q *signalQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
