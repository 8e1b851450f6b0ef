package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readerEnv, set to a server's URL, turns this program into an audit reader
// (runReader): the events stream read the way an audit reads it, in a process of its
// own over a socket (studyctl verify). Read in the measured process instead, the
// reader's collector also scans the embedded server's heap, which grows with the log
// (its per-subject index, 100 MB of pointers at 10M events), and the in-process
// connection skips the socket every real reader pays for.
const readerEnv = "STUDYBENCH_READER"

// readPatience bounds one read measurement: one pass over 10M events takes about half
// a minute.
const readPatience = 20 * time.Minute

// reader is an audit reader in a child process.
type reader struct{ *child }

// readKind is how the reader reads the events stream.
type readKind string

const (
	readRaw    readKind = "raw"    // rawRead: every message, nothing decoded
	readReplay readKind = "replay" // auditReplay, parallel: the audit verifier and every fold
)

// readResult is one read measurement, as the reader reports it: the median rate of
// repeated whole-log reads, the messages they read in all, and the reader's CPU.
type readResult struct {
	Rate float64       `json:"rate"`
	Msgs uint64        `json:"msgs"`
	CPU  time.Duration `json:"cpu_ns"`
	Last replayResult  `json:"last_replay"` // for readReplay
}

// audited is a read in the reader with its cost: the reader's CPU and this process's
// (the server's side) over the same time, per message read.
type audited struct {
	readResult
	CPUPerMessage time.Duration `json:"cpu_per_message_ns"`
}

// startReader starts a reader of the server at url.
func startReader(url string) (*reader, error) {
	c, err := startChild(readerEnv, url)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	return &reader{c}, nil
}

// read has the reader read the events stream up to sequence last, the given way.
func (r *reader) read(kind readKind, last uint64) (audited, error) {
	cpu := processCPU()
	line, err := r.ask(fmt.Sprintf("%s %d", kind, last), readPatience)
	if err != nil {
		return audited{}, fmt.Errorf("reader: %w", err)
	}
	var res readResult
	if err := json.Unmarshal([]byte(line), &res); err != nil || res.Msgs == 0 {
		return audited{}, fmt.Errorf("reader: %q", line)
	}
	return audited{readResult: res, CPUPerMessage: (res.CPU + processCPU() - cpu) / time.Duration(res.Msgs)}, nil
}

// runReader is the child's side: it answers each "kind last" line of stdin with a
// readResult in JSON, or with "error …", until stdin closes.
func runReader(ctx context.Context, url string, stdin io.Reader, stdout io.Writer) error {
	nc, err := nats.Connect(url, nats.Name("studybench-reader"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var kind readKind
		var last uint64
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &kind, &last); err != nil {
			return fmt.Errorf("reader: %q: %w", sc.Text(), err)
		}
		res, err := readLog(ctx, js, kind, last)
		if err != nil {
			answerError(stdout, err)
			continue
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	}
	return sc.Err()
}

// readLog measures one kind of read of the events stream up to last, repeated for at
// least minMeasure.
func readLog(ctx context.Context, js jetstream.JetStream, kind readKind, last uint64) (readResult, error) {
	var res readResult
	cpu := processCPU()
	var err error
	res.Rate, err = repeatRate(func() (float64, error) {
		switch kind {
		case readRaw:
			res.Msgs += last
			return rawRead(ctx, js, last)
		case readReplay:
			r, err := auditReplay(ctx, js, true)
			res.Last, res.Msgs = r, res.Msgs+r.Messages
			return r.MsgsPerS, err
		}
		return 0, errors.New("no such read: " + string(kind))
	})
	res.CPU = processCPU() - cpu
	return res, err
}
