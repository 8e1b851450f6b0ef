package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// natsNode is one nats-server container. Its client and monitoring ports are pinned to
// fixed host ports so that a URL stays valid across stop/start and network faults (the
// engine would otherwise map new ones), which lets studyd's URL list ride them out.
type natsNode struct {
	Name    string
	ctr     *testcontainers.DockerContainer
	client  int
	monitor int
}

// URL is the node's client URL on the host.
func (n *natsNode) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.client) }

// ID is the container id, for the Docker API.
func (n *natsNode) ID() string { return n.ctr.GetContainerID() }

// nodeSpec says how to start one node.
type nodeSpec struct {
	name   string                        // server name, and the network alias in a cluster
	nw     *testcontainers.DockerNetwork // nil for a standalone node
	config string                        // nats.conf contents; "" to configure by flags only
	args   []string                      // extra server flags
	env    map[string]string             // the server's environment (a config file's $VARS)
}

// startNode runs one node and waits until its client port accepts connections (not
// until it is healthy: a cluster node alone never is).
func startNode(ctx context.Context, t *testing.T, s nodeSpec) *natsNode {
	t.Helper()
	n, err := runNode(ctx, t, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runNode is startNode returning its error, so that it can run on another goroutine
// (it uses t only for Cleanup, which is safe there).
func runNode(ctx context.Context, t *testing.T, s nodeSpec) (*natsNode, error) {
	client, err := freePort()
	if err != nil {
		return nil, err
	}
	monitor, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &natsNode{Name: s.name, client: client, monitor: monitor}
	p4222, p8222 := network.MustParsePort("4222/tcp"), network.MustParsePort("8222/tcp")
	loopback := netip.MustParseAddr("127.0.0.1")
	args := []string{"--name", s.name, "-js", "-sd", "/data", "-m", "8222"}
	if strings.Contains(s.config, "store_dir") {
		// The file names its own store (under /data); the flag would duplicate it.
		args = []string{"--name", s.name, "-js", "-m", "8222"}
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts("4222/tcp", "8222/tcp"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				p4222: {{HostIP: loopback, HostPort: strconv.Itoa(n.client)}},
				p8222: {{HostIP: loopback, HostPort: strconv.Itoa(n.monitor)}},
			}
		}),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForListeningPort("4222/tcp").SkipInternalCheck()),
	}
	if s.nw != nil {
		opts = append(opts, tcnetwork.WithNetwork([]string{s.name}, s.nw))
	}
	if s.config != "" {
		opts = append(opts, testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader: strings.NewReader(s.config), ContainerFilePath: "/etc/nats.conf", FileMode: 0o644,
		}))
		args = append(args, "-c", "/etc/nats.conf")
	}
	if len(s.env) > 0 {
		opts = append(opts, testcontainers.WithEnv(s.env))
	}
	opts = append(opts, testcontainers.WithCmd(append(args, s.args...)...))
	ctr, err := testcontainers.Run(ctx, natsImage, opts...)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		return nil, fmt.Errorf("start nats node %s: %w", s.name, err)
	}
	n.ctr = ctr
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, n)
		}
	})
	return n, nil
}

// startSingle runs one JetStream node and waits until it is healthy.
func startSingle(ctx context.Context, t *testing.T, s nodeSpec) *natsNode {
	t.Helper()
	if s.name == "" {
		s.name = "single"
	}
	n := startNode(ctx, t, s)
	waitHealthy(ctx, t, n)
	return n
}

// cluster is three nodes n1..n3 on a private network, routed to each other.
type cluster struct {
	nw    *testcontainers.DockerNetwork
	Nodes []*natsNode
}

// startCluster runs a 3-node JetStream cluster and waits until every node is healthy
// (the meta leader is elected and each node's JetStream is current).
func startCluster(ctx context.Context, t *testing.T) *cluster {
	t.Helper()
	nw, err := tcnetwork.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	c := &cluster{nw: nw, Nodes: make([]*natsNode, 3)}
	// Concurrently, as a cluster forms only once its routes resolve; t.Fatal must stay
	// on the test's goroutine, so the errors come back here.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range c.Nodes {
		wg.Go(func() {
			name := fmt.Sprintf("n%d", i+1)
			c.Nodes[i], errs[i] = runNode(ctx, t, nodeSpec{name: name, nw: nw, args: []string{
				"--cluster_name", "studyd-it", "--cluster", "nats://0.0.0.0:6222",
				"--routes", "nats://n1:6222,nats://n2:6222,nats://n3:6222",
				"--no_advertise", // host clients cannot dial the containers' private addresses
			}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		waitHealthy(ctx, t, n)
	}
	return c
}

// URLs is the comma-separated client URLs of every node.
func (c *cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node with the given server name.
func (c *cluster) Node(t *testing.T, name string) *natsNode {
	t.Helper()
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no cluster node named %q", name)
	return nil
}

// waitHealthy polls the node's /healthz until it answers 200.
func waitHealthy(ctx context.Context, t *testing.T, n *natsNode) {
	t.Helper()
	if err := pollHealthy(ctx, n, 90*time.Second); err != nil {
		t.Fatalf("nats node %s: %v", n.Name, err)
	}
}

// pollHealthy polls the node's /healthz until it answers 200 or timeout passes.
func pollHealthy(ctx context.Context, n *natsNode, timeout time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor)
	return pollHTTP(ctx, url, timeout)
}

// pollHTTP polls url until it answers 200 or timeout passes.
func pollHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("get %s: %w", url, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy after %v (last: %s)", url, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// connect dials urls as a test client that notices a dead or paused server within a
// couple of seconds (the default ping interval would hang for minutes).
func connect(t *testing.T, urls string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200 * time.Millisecond),
		nats.PingInterval(500 * time.Millisecond),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(3 * time.Second),
	}
	nc, err := nats.Connect(urls, append(base, opts...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newJS wraps nc in the JetStream API.
func newJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// handedOut remembers every port freePort returned, so that nodes started concurrently
// never get the same one: the kernel may offer a just-closed port again.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port nothing listens on right now and that this test
// binary has not handed out before.
func freePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("free port: no new port in 100 tries")
}

// dumpLogs writes the tail of a node's log to the test log, for a failed test.
func dumpLogs(t *testing.T, n *natsNode) {
	rc, err := n.ctr.Logs(context.Background())
	if err != nil {
		t.Logf("logs of %s: %v", n.Name, err)
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("last log lines of nats node %s:\n%s", n.Name, strings.Join(lastN(lines, 40), "\n"))
}
