package main

import (
	"bufio"
	"context"
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

// runChildRole runs this process as a child if its environment names a role (the
// memory run's server, the scale run's pre-fill generator, an audit reader), and
// reports whether it did.
func runChildRole(ctx context.Context) (isChild bool, err error) {
	if dir := os.Getenv(childEnv); dir != "" {
		return true, runChildServer(dir, os.Stdin, os.Stdout)
	}
	if url := os.Getenv(prefillEnv); url != "" {
		return true, runPrefill(ctx, url, os.Stdin, os.Stdout)
	}
	if url := os.Getenv(readerEnv); url != "" {
		return true, runReader(ctx, url, os.Stdin, os.Stdout)
	}
	return false, nil
}

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

// child is this binary re-executed in another process, in the role env selects, so
// that its memory (and its garbage collector) is not the measured process's. It talks
// over stdin and stdout, one line at a time; closing stdin ends it.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, a line at a time; closed when it exits
	dir   string      // removed by stop, if set
}

// startChild re-executes this binary with env set to value.
func startChild(env, value string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+value)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c, nil
}

// line waits up to timeout for the child's next line.
func (c *child) line(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", errors.New("the child process exited")
		}
		return strings.TrimSpace(l), nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer from the child process in %s", timeout)
	}
}

// ask sends the child one request line and waits up to patience for its answer. An
// answer "error <quoted message>" (answerError) is returned as an error.
func (c *child) ask(request string, patience time.Duration) (string, error) {
	if _, err := fmt.Fprintln(c.stdin, request); err != nil {
		return "", err
	}
	line, err := c.line(patience)
	if err != nil {
		return "", err
	}
	if quoted, failed := strings.CutPrefix(line, "error "); failed {
		if msg, err := strconv.Unquote(quoted); err == nil {
			quoted = msg
		}
		return "", errors.New(quoted)
	}
	return line, nil
}

// answerError is the child's answer to a request that failed, as ask reads it.
func answerError(stdout io.Writer, err error) {
	fmt.Fprintln(stdout, "error", strconv.Quote(err.Error()))
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// rss is the child's resident set size in bytes.
func (c *child) rss() (uint64, error) { return vmRSS(strconv.Itoa(c.cmd.Process.Pid)) }

// childServer is a nats-server in a child process.
type childServer struct {
	*child
	url string
}

// startChildServer re-executes this binary as a server on a fresh store directory.
func startChildServer() (*childServer, error) {
	dir, err := os.MkdirTemp("", "studybench-child-")
	if err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	c, err := startChild(childEnv, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("child server: %w", err)
	}
	c.dir = dir
	url, err := c.line(30 * time.Second)
	if err != nil || !strings.HasPrefix(url, "nats://") {
		c.stop()
		return nil, fmt.Errorf("child server: did not start (said %q): %v", url, err)
	}
	go func() { // nothing more is read from a server: keep its stdout from filling up
		for range c.lines {
		}
	}()
	return &childServer{child: c, url: url}, nil
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
