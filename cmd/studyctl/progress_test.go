package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal and returns its controlling side (to read what was
// written) and its terminal side (to hand to studyctl as stderr).
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("TIOCGPTN: %v", e)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("TIOCSPTLCK: %v", e)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	return ptmx, pts
}

// TestReplayShowsProgressOnATerminal: every command that replays the log draws a
// progress bar on a terminal (and nothing on a pipe, which the other tests see).
func TestReplayShowsProgressOnATerminal(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	for _, tt := range []struct {
		args []string
		desc string
	}{
		{[]string{"audit", "--format", "csv", "-o", os.DevNull}, "exporting"},
		{[]string{"verify"}, "verifying"},
		{[]string{"health", as.study.String()}, "folding"},
		{[]string{"explain", string(as.client), as.study.String()}, "reading"},
		{[]string{"asof", string(as.client), "--at", "2030-01-01"}, "reading"},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			ptmx, pts := openPTY(t)
			var mu sync.Mutex
			var seen bytes.Buffer
			done := make(chan struct{})
			go func() {
				defer close(done)
				b := make([]byte, 4096)
				for {
					n, err := ptmx.Read(b)
					mu.Lock()
					seen.Write(b[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			var stdout bytes.Buffer
			err := run(context.Background(), append(tt.args, "-s", as.url), noEnv, strings.NewReader(""), &stdout, pts)
			pts.Close()
			if err != nil {
				t.Fatalf("studyctl %v: %v", tt.args, err)
			}
			ptmx.Close()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(seen.String(), tt.desc) {
				t.Errorf("studyctl %v drew %q on the terminal, want a %q progress bar", tt.args, seen.String(), tt.desc)
			}
		})
	}
}

// TestSimulateShowsProgressOnATerminal: simulate draws its publishing and its waiting
// for studyd's decisions on a terminal.
func TestSimulateShowsProgressOnATerminal(t *testing.T) {
	url := startStudyd(t, 2)
	ptmx, pts := openPTY(t)
	var mu sync.Mutex
	var seen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			mu.Lock()
			seen.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"simulate", "-s", url, "--clients", "20", "--days", "2"}, noEnv, strings.NewReader(""), &stdout, pts)
	pts.Close()
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	ptmx.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"publishing", "deciding"} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("simulate drew %q on the terminal, want a %q progress bar", seen.String(), want)
		}
	}
}
