package integration

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// faults injects failures into cluster nodes through the Docker API: the container
// type of testcontainers has no pause, signal or network-disconnect methods, and a
// scratch image has no shell to exec iptables in.
type faults struct {
	cli *testcontainers.DockerClient
	c   *cluster
}

// newFaults returns a fault injector for c.
func newFaults(ctx context.Context, t *testing.T, c *cluster) *faults {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return &faults{cli: cli, c: c}
}

// Stop stops n gracefully (SIGTERM, then SIGKILL after 5 s).
func (f *faults) Stop(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	d := 5 * time.Second
	if err := n.ctr.Stop(ctx, &d); err != nil {
		t.Fatalf("stop %s: %v", n.Name, err)
	}
}

// Kill sends SIGKILL to n's server.
func (f *faults) Kill(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if _, err := f.cli.ContainerKill(ctx, n.ID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatalf("kill %s: %v", n.Name, err)
	}
}

// Start starts a stopped or killed n and waits until it is healthy again; its store
// directory survived in the container's filesystem, so it rejoins and catches up.
func (f *faults) Start(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if err := n.ctr.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", n.Name, err)
	}
	waitHealthy(ctx, t, n)
}

// Pause freezes every process of n (the cgroup freezer): its peers and clients see
// a server that stops answering without closing any connection.
func (f *faults) Pause(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if _, err := f.cli.ContainerPause(ctx, n.ID(), client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("pause %s: %v", n.Name, err)
	}
}

// Unpause thaws n and waits until it is healthy again.
func (f *faults) Unpause(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if _, err := f.cli.ContainerUnpause(ctx, n.ID(), client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("unpause %s: %v", n.Name, err)
	}
	waitHealthy(ctx, t, n)
}

// Disconnect cuts n off the cluster network (and so from its published ports too).
func (f *faults) Disconnect(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if _, err := f.cli.NetworkDisconnect(ctx, f.c.nw.ID, client.NetworkDisconnectOptions{Container: n.ID(), Force: true}); err != nil {
		t.Fatalf("disconnect %s: %v", n.Name, err)
	}
}

// Connect reattaches n to the cluster network under its alias (without the alias its
// peers could no longer resolve its route URL) and waits until it is healthy again.
func (f *faults) Connect(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	_, err := f.cli.NetworkConnect(ctx, f.c.nw.ID, client.NetworkConnectOptions{
		Container:      n.ID(),
		EndpointConfig: &network.EndpointSettings{Aliases: []string{n.Name}},
	})
	if err != nil {
		t.Fatalf("connect %s: %v", n.Name, err)
	}
	waitHealthy(ctx, t, n)
}
