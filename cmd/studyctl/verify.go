package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
)

// runVerify replays the log and checks it: legal transitions, hash chains, signed
// checkpoints, live views. It fails naming the first fault.
func runVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	var sf selectionFlags
	sf.register(fs)
	pubkey := fs.String("pubkey", e.getenv("STUDYCTL_PUBKEY"), "ed25519 public key (PEM) that signs the checkpoints (env STUDYCTL_PUBKEY); without it signatures are not checked")
	views := fs.Bool("views", true, "compare the live KV views with the fold of the log (whole-stream replays only); views behind the log's last commit fail")
	viewsWait := fs.Duration("views-wait", 5*time.Second, "how long the views may take to reach the log's last commit before they count as behind")
	checkpointsOf := fs.String("checkpoints-of", eventlog.EventsStream, "the stream name the checkpoints were signed for (verify a copy against the original's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify: unexpected argument %q", fs.Arg(0))
	}
	o, sel, err := sf.options(nil, false)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if sel.Study.Object != "" || !sel.Since.IsZero() || !sel.Until.IsZero() {
		return fmt.Errorf("verify: --study and --commit-since/--commit-until do not apply (chains are per client; select by --client, --from/--to or --since/--until)")
	}
	cfg := checkpoint.VerifyConfig{Replay: o, CheckpointsOf: *checkpointsOf, ViewsWait: *viewsWait}
	if *pubkey != "" {
		b, err := os.ReadFile(*pubkey)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if cfg.PublicKey, err = audit.ParsePublicKey(b); err != nil {
			return fmt.Errorf("verify: %s: %w", *pubkey, err)
		}
	}
	whole := sf.client == "" && sf.from <= 1 && sf.to == 0 && sf.since == "" && sf.until == ""
	cfg.Views = *views && whole && sf.stream == eventlog.EventsStream
	nc, err := e.connect()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer nc.Close()
	js, err := client.JetStreamOf(nc)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	lo, hi, ok, err := eventlog.ReplayBounds(ctx, js, o)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if ok {
		bar := progress(e.stderr, int64(hi-lo+1), "verifying")
		cfg.Progress = func(seq uint64) { _ = bar.Set64(int64(seq - lo + 1)) }
		defer func() { _ = bar.Finish() }()
	}
	start := time.Now()
	r, err := checkpoint.VerifyLog(ctx, js, cfg)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if e.json {
		if err := e.printJSON(struct {
			audit.Report
			Seconds float64 `json:"duration_seconds"`
		}{r, took.Seconds()}); err != nil {
			return err
		}
	} else if err := printVerify(e.stdout, r, took); err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("verify: %d fault(s), the first: %w", r.FaultCount, err)
	}
	return nil
}

func printVerify(w io.Writer, r audit.Report, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "messages\t%d (seq %d..%d) in %s, %.0f msg/s\n", r.Messages, r.FirstSeq, r.LastSeq,
		took.Round(time.Millisecond), float64(r.Messages)/max(took.Seconds(), 1e-9))
	fmt.Fprintf(tw, "commits\t%d from %d clients, %d rejections, %d other\n", r.Commits, r.Clients, r.Rejections, r.Other)
	fmt.Fprintf(tw, "events\t%d, %d transitions checked against the state machine\n", r.Events, r.Transitions)
	for v, n := range r.FSMVersions {
		fmt.Fprintf(tw, "fsm version\t%s: %d commits\n", v, n)
	}
	if r.Digest != "" {
		sig := "signatures not checked (no --pubkey)"
		if r.SignaturesChecked {
			sig = "signatures checked"
		}
		fmt.Fprintf(tw, "checkpoints\t%d checked, %s\n", r.CheckpointsChecked, sig)
		fmt.Fprintf(tw, "digest\t%s\n", r.Digest)
	}
	if v := r.Views; v != nil {
		state := "EQUAL"
		if !v.Equal() {
			state = fmt.Sprintf("DIFFERENT (%d keys)", len(v.Mismatches))
		}
		at := fmt.Sprintf("at seq %d of %d", v.Reflects, v.Head)
		if v.Behind() {
			at += fmt.Sprintf(", BEHIND the log by %d", v.Head-v.Reflects)
		}
		fmt.Fprintf(tw, "views\t%s %s: %d keys, checkpoint %d, fold to seq %d, digest %.16s\n", state, at, v.Keys, v.Checkpoint, v.FoldedTo, v.FoldDigest)
	}
	if r.FaultCount == 0 {
		fmt.Fprintf(tw, "result\tOK\n")
	} else {
		fmt.Fprintf(tw, "result\t%d FAULT(S)\n", r.FaultCount)
		for i, f := range r.Faults {
			if i == 10 {
				fmt.Fprintf(tw, "\t… %d more (--json lists them all)\n", r.FaultCount-10)
				break
			}
			fmt.Fprintf(tw, "\t%s\n", f.Error())
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// runCheckpoint signs and publishes a checkpoint of the events stream now.
func runCheckpoint(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	keyFile := fs.String("key", e.getenv("STUDYCTL_KEY"), "ed25519 private key (PEM, from studyctl keygen) (env STUDYCTL_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" {
		return fmt.Errorf("checkpoint: --key is required")
	}
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	key, err := audit.ParsePrivateKey(b)
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", *keyFile, err)
	}
	nc, err := e.connect()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer nc.Close()
	js, err := client.JetStreamOf(nc)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := checkpoint.Write(ctx, js, key)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(cp)
	}
	_, err = fmt.Fprintf(e.stdout, "checkpoint of %s: %d messages through seq %d, digest %s, key %s, at %s\n",
		cp.Stream, cp.Count, cp.Seq, cp.Digest, cp.KeyID, cp.At.Format(time.RFC3339))
	return err
}

// runKeygen writes a new checkpoint signing key: FILE (private) and FILE.pub.
func runKeygen(_ context.Context, e *env, args []string) error {
	fs := e.flags()
	out := fs.String("out", "studyd-checkpoint.key", "private key file to write; the public key goes to FILE.pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, pub, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	// O_EXCL: never overwrite a key that may have signed checkpoints.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(*out+".pub", pub, 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	k, err := audit.ParsePublicKey(pub)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if e.json {
		return e.printJSON(map[string]string{"private": *out, "public": *out + ".pub", "key_id": audit.KeyID(k)})
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %s (private, keep it secret) and %s.pub (for verify --pubkey); key id %s\n", *out, *out, audit.KeyID(k))
	return err
}
