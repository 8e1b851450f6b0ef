package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// machine is where a run happened.
type machine struct {
	Start      time.Time `json:"start"`
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	MemTotal   uint64    `json:"mem_total_bytes"`
	Go         string    `json:"go"`
	OS         string    `json:"os"`
	Arch       string    `json:"arch"`
	NATSServer string    `json:"nats_server"`
	LoadStart  string    `json:"load_start"`
	LoadEnd    string    `json:"load_end"`
}

func thisMachine() machine {
	return machine{
		Start: time.Now().UTC(), CPU: procField("/proc/cpuinfo", "model name"), Cores: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), MemTotal: memTotal(), Go: runtime.Version(), OS: runtime.GOOS,
		Arch: runtime.GOARCH, NATSServer: server.VERSION, LoadStart: loadAverage(),
	}
}

// procField returns the value of the first "name : value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() uint64 {
	kb, err := strconv.ParseUint(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

// loadAverage is the 1, 5 and 15 minute load averages: other work on the machine
// skews every figure, so the report shows it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// processCPU is the CPU time this process (studyd's parts and the embedded server
// alike) has used so far, user and system; 0 where the OS does not say. Its growth over
// a run, divided by the run's wall time, is how many cores the run kept busy: whether
// a figure is bound by the machine or by waiting.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
