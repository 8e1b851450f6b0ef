package main

import (
	"bufio"

	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/studyd/studyd/adapters/nats/embedded"
)

// childEnv, set to a store directory, turns this program into a bare nats-server (the
// embedded one, on a loopback port): the memory scenario runs the server in its own
// process so that its RSS is its own.
const childEnv = "STUDYBENCH_SERVER_DIR"

// runChildServer serves until stdin closes (the parent exited or is done), after
// printing the client URL as its first line.
func runChildServer(dir string, stdin io.Reader, stdout io.Writer) error {
	ns, err := embedded.Start(embedded.Config{StoreDir: dir, Listen: "127.0.0.1:-1"})
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	fmt.Fprintln(stdout, ns.ClientURL())
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

// childServer is a nats-server in a child process.
type childServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
	dir   string
}

// startChildServer re-executes this binary as a server on a fresh store directory.
func startChildServer() (*childServer, error) {
	dir, err := os.MkdirTemp("", "studybench-child-")
	if err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	c := &childServer{cmd: cmd, stdin: stdin, dir: dir}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case c.url = <-line:
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(c.url, "nats://") {
		c.stop()
		return nil, fmt.Errorf("child server: did not start (said %q)", c.url)
	}
	return c, nil
}

// rss is the child's resident set size in bytes.
func (c *childServer) rss() (uint64, error) { return vmRSS(strconv.Itoa(c.cmd.Process.Pid)) }

func (c *childServer) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(c.dir)
}

// vmRSS reads VmRSS of /proc/<pid>/status ("self" for this process), in bytes.
func vmRSS(pid string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss: no VmRSS line")
}
