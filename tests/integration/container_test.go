package integration

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/studyd/studyd/simulate"
)

// TestStudydInContainer runs studyd the way a deployment would: in its own FROM scratch
// image, beside a 3-node cluster on the cluster's private network, reaching the nodes
// by name. A small fleet's commands, published from the host, are all committed.
func TestStudydInContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startCluster(ctx, t)
	img := studydImage(t)
	ctr, err := testcontainers.Run(ctx, img,
		tcnetwork.WithNetwork([]string{"studyd"}, c.nw),
		testcontainers.WithExposedPorts("8080/tcp"),
		testcontainers.WithCmd("--nats-url", "nats://n1:4222,nats://n2:4222,nats://n3:4222",
			"--replicas", "3", "--http", "0.0.0.0:8080", "--log-level", "warn"),
		testcontainers.WithWaitStrategyAndDeadline(90*time.Second,
			wait.ForHTTP("/readyz").WithPort("8080/tcp")))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start studyd container: %v", err)
	}

	js := newJS(t, connect(t, c.URLs()))
	w := newWorkload(t, simulate.Config{Clients: 50, Days: 7, Seed: 5})
	rep := publishAll(ctx, js, w.Msgs, pubOptions{Workers: 4, PerMsg: time.Minute})
	if len(rep.Failed) != 0 {
		t.Fatalf("got %d commands never accepted, want 0", len(rep.Failed))
	}
	waitDrained(ctx, t, js, 2*time.Minute)
	a := readAudit(ctx, t, js)
	checkExactlyOnce(t, rep.Acked, a)
	checkTally(t, w, a)
	t.Logf("FIGURE container_commands=%d", len(rep.Acked))
}
