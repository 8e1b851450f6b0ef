package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// studydProc is one studyd running as a host process, so that kill -9 and a restart
// are a signal and an exec away.
type studydProc struct {
	Name    string
	HTTP    string // host:port of /healthz, /readyz, /metrics
	args    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startStudyd runs studyd against natsURLs with extra flags and waits until /readyz
// answers 200. Its log goes to a file, printed if the test fails.
func startStudyd(ctx context.Context, t *testing.T, name, natsURLs string, extra ...string) *studydProc {
	t.Helper()
	bin := studydBinary(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &studydProc{
		Name:    name,
		HTTP:    "127.0.0.1:" + strconv.Itoa(port),
		logPath: filepath.Join(t.TempDir(), name+".log"),
	}
	p.args = append([]string{"--nats-url", natsURLs, "--http", p.HTTP, "--log-level", "warn"}, extra...)
	p.start(ctx, t, bin)
	t.Cleanup(func() {
		p.Kill(t)
		if t.Failed() {
			p.dumpLog(t)
		}
	})
	return p
}

// start execs the binary with p's arguments (appending to its log) and waits until
// it is ready.
func (p *studydProc) start(ctx context.Context, t *testing.T, bin string) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("studyd log: %v", err)
	}
	fmt.Fprintf(logf, "=== start %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start studyd %s: %v", p.Name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, 90*time.Second); err != nil {
		t.Fatalf("studyd %s: %v", p.Name, err)
	}
}

// waitReady polls /readyz, failing early if the process exits.
func (p *studydProc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := pollHTTP(ctx, "http://"+p.HTTP+"/readyz", timeout)
	select {
	case <-p.exited:
		return fmt.Errorf("exited before ready (%s): see its log", p.cmd.ProcessState)
	default:
	}
	return err
}

// Kill sends SIGKILL and waits for the process to go: no drain, no goodbye.
func (p *studydProc) Kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
}

// Stop sends SIGTERM and waits for the drain to finish.
func (p *studydProc) Stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
}

func (p *studydProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Logf("signal studyd %s: %v", p.Name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("studyd %s did not exit within 30s of %v", p.Name, sig)
	}
}

// Restart starts a stopped or killed p again with the same flags and waits until ready.
func (p *studydProc) Restart(ctx context.Context, t *testing.T) {
	t.Helper()
	p.start(ctx, t, studydBinary(t))
}

// Metric returns the sum of the samples of metric whose labels include every
// label="value" pair given, from /metrics.
func (p *studydProc) Metric(t *testing.T, metric string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", p.Name, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(name, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("metrics of %s: %q: %v", p.Name, line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("metrics of %s: %v", p.Name, err)
	}
	return sum
}

// dumpLog writes p's projector lines (the views' state changes, easily pushed out of
// a tail by the intake's retries) and then the tail of its log to the test log.
func (p *studydProc) dumpLog(t *testing.T) {
	p.logProjector(t)
	t.Logf("last log lines of studyd %s:\n%s", p.Name, strings.Join(lastN(p.logLines(), 40), "\n"))
}

// logProjector writes the last 30 of p's projector log lines to the test log: how the
// views rode out the faults (the terms that ended and why, tails re-opened).
func (p *studydProc) logProjector(t *testing.T) {
	var proj []string
	for _, l := range p.logLines() {
		if strings.Contains(l, "projector") {
			proj = append(proj, l)
		}
	}
	t.Logf("projector log lines of studyd %s:\n%s", p.Name, strings.Join(lastN(proj, 30), "\n"))
}

func (p *studydProc) logLines() []string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func lastN(lines []string, n int) []string { return lines[max(0, len(lines)-n):] }
