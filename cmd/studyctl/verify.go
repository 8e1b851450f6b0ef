package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
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
	commitKey := fs.String("commit-key", e.getenv("STUDYCTL_COMMIT_KEY"), "studyd's commit key file (the embedded default's is <data>/commit.key) (env STUDYCTL_COMMIT_KEY); without it authorship is not checked")
	pubkey := fs.String("pubkey", e.getenv("STUDYCTL_PUBKEY"), "ed25519 public key (PEM) that signs the checkpoints (env STUDYCTL_PUBKEY); without it signatures are not checked")
	views := fs.Bool("views", true, "compare the live KV views with the fold of the log (whole-stream replays only)")
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
	cfg := checkpoint.VerifyConfig{Replay: o, CheckpointsOf: *checkpointsOf}
	if *commitKey != "" {
		b, err := os.ReadFile(*commitKey)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if cfg.CommitKey, err = audit.ParseCommitKey(b); err != nil {
			return fmt.Errorf("verify: --commit-key %s: %w", *commitKey, err)
		}
	}
	if *pubkey != "" {
		b, err := os.ReadFile(*pubkey)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if cfg.PublicKey, err = audit.ParsePublicKey(b); err != nil {
			return fmt.Errorf("verify: --pubkey %s: %w", *pubkey, err)
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
	fmt.Fprintf(tw, "messages\t\t%d (seq %d..%d) in %s, %.0f msg/s\n", r.Messages, r.FirstSeq, r.LastSeq,
		took.Round(time.Millisecond), float64(r.Messages)/max(took.Seconds(), 1e-9))
	fmt.Fprintf(tw, "commits\t\t%d from %d clients, %d rejections, %d other\n", r.Commits, r.Clients, r.Rejections, r.Other)
	for v, n := range r.FSMVersions {
		fmt.Fprintf(tw, "fsm version\t\t%s: %d commits\n", v, n)
	}
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status, c.Detail+hint(c))
	}
	if r.Digest != "" {
		fmt.Fprintf(tw, "digest\t\t%s\n", r.Digest)
	}
	if r.FaultCount > 0 {
		fmt.Fprintf(tw, "faults\t%d\t\n", r.FaultCount)
		for i, f := range r.Faults {
			if i == 10 {
				fmt.Fprintf(tw, "\t\t… %d more (--json lists them all)\n", r.FaultCount-10)
				break
			}
			fmt.Fprintf(tw, "\t\t%s\n", f.Error())
		}
	}
	fmt.Fprintf(tw, "verdict\t\t%s\n", r.Verdict())
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// hint names the flag that would have made a check that was not made.
func hint(c audit.Check) string {
	if c.Status != audit.CheckNotChecked {
		return ""
	}
	switch {
	case c.Name == audit.CheckAuthorship:
		return " (give --commit-key)"
	case c.Name == audit.CheckSignatures && strings.HasPrefix(c.Detail, "no public key"):
		return " (give --pubkey)"
	}
	return ""
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
	commit := fs.Bool("commit", false, "write a commit key instead (studyd --commit-key, verify --commit-key): a secret shared by studyd's instances and the auditor, no .pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *commit {
		return keygenCommit(e, *out)
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

// keygenCommit writes a new commit key to out (mode 0600, never over an existing file).
func keygenCommit(e *env, out string) error {
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	k, err := audit.ParseCommitKey(b)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if e.json {
		return e.printJSON(map[string]string{"commit_key": out, "key_id": k.ID()})
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %s (secret: for studyd --commit-key and verify --commit-key); key id %s\n", out, k.ID())
	return err
}
