// Package integration runs studyd against nats-server in containers (testcontainers-go):
// a single node, a 3-node cluster with faults injected through the Docker API, several
// studyd processes sharing the command partitions, and NATS account permissions.
//
// The machine these tests run on cannot pull images, so every image is built here
// FROM scratch around a static binary compiled from the module cache
// (/work/shared/reference/testcontainers.md has the recipe and its pitfalls).
// A missing Docker engine fails the suite: an integration test that skips is not one
// that passed.
package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// natsImage is the FROM scratch nats-server image TestMain built.
var natsImage string

// workDir holds the binaries and build contexts of this test binary; removed at exit.
var workDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// Both must be set before the first testcontainers call: its config is read once.
	// Ryuk would be pulled from a registry this machine cannot reach, and only the
	// literal "true" disables it.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && localDocker() {
		// Inside a VM with /.dockerenv, testcontainers would dial a gateway IP that
		// does not route to the published ports; the daemon is local.
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}

	if os.Getenv("STUDYD_IT_TCLOG") == "" {
		// One line per container step drowns the figures; STUDYD_IT_TCLOG=1 brings it back.
		tclog.SetDefault(tclog.NewNoopLogger())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pingDocker(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: integration tests need a running Docker engine: %v\n"+
			"(start dockerd, or set DOCKER_HOST; see /work/shared/reference/testcontainers.md)\n", err)
		return 1
	}
	var err error
	workDir, err = os.MkdirTemp("", "studyd-it-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: make work dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(workDir)
	natsImage, err = buildNATSImage(ctx, workDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build nats-server image: %v\n", err)
		return 1
	}
	return m.Run()
}

// localDocker reports whether the Docker engine is reached through a local socket, so
// that published ports are on 127.0.0.1.
func localDocker() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// pingDocker checks that the engine answers.
func pingDocker(ctx context.Context) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}
