package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
)

// verifyCmd replays the log and checks it: legal transitions, hash chains, signed
// checkpoints, live views. It fails naming the first fault.
func (c *cli) verifyCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("verify", "replay the log and prove it: legal transitions, unbroken hash chains, signed checkpoints, views equal to a fold of the log")
	var sf selectionFlags
	sf.register(cmd, true)
	var pubkey, checkpointsOf, commitKey string
	var views bool
	c.envFlag(cmd, "commit-key", "studyd's commit key file (the embedded default's is <data>/commit.key); without it authorship is not checked", "STUDYCTL_COMMIT_KEY").PlaceHolder("FILE").StringVar(&commitKey)
	var viewsWait time.Duration
	c.envFlag(cmd, "pubkey", "ed25519 public key (PEM) that signs the checkpoints; without it signatures are not checked", "STUDYCTL_PUBKEY").PlaceHolder("FILE").StringVar(&pubkey)
	cmd.Flag("views", "compare the live KV views with the fold of the log (whole-stream replays only); views behind the log's last commit fail").Default("true").BoolVar(&views)
	cmd.Flag("views-wait", "how long the views may take to reach the log's last commit before they count as behind").Default("5s").PlaceHolder("DURATION").DurationVar(&viewsWait)
	cmd.Flag("checkpoints-of", "the stream name the checkpoints were signed for (verify a copy against the original's)").Default(eventlog.EventsStream).PlaceHolder("NAME").StringVar(&checkpointsOf)
	return cmd.FullCommand(), func(ctx context.Context) error {
		o, sel, err := sf.options(nil, false)
		if err != nil {
			return err
		}
		if sel.Study.Object != "" || !sel.Since.IsZero() || !sel.Until.IsZero() {
			return fmt.Errorf("--study and --commit-since/--commit-until do not apply (chains are per client; select by --client, --from/--to or --since/--until)")
		}
		cfg := checkpoint.VerifyConfig{Replay: o, CheckpointsOf: checkpointsOf, ViewsWait: viewsWait}
		if commitKey != "" {
			b, err := os.ReadFile(commitKey)
			if err != nil {
				return err
			}
			if cfg.CommitKey, err = audit.ParseCommitKey(b); err != nil {
				return fmt.Errorf("--commit-key %s: %w", commitKey, err)
			}
		}
		if pubkey != "" {
			b, err := os.ReadFile(pubkey)
			if err != nil {
				return err
			}
			if cfg.PublicKey, err = audit.ParsePublicKey(b); err != nil {
				return fmt.Errorf("--pubkey %s: %w", pubkey, err)
			}
		}
		whole := sf.client == "" && sf.from <= 1 && sf.to == 0 && sf.since == "" && sf.until == ""
		cfg.Views = views && whole && sf.stream == eventlog.EventsStream
		js, closer, err := c.jsConnect("verify")
		if err != nil {
			return err
		}
		defer closer()
		lo, hi, ok, err := eventlog.ReplayBounds(ctx, js, o)
		if err != nil {
			return err
		}
		if ok {
			bar := progress(c.stderr, int64(hi-lo+1), "verifying", "msg")
			cfg.Progress = func(seq uint64) { _ = bar.Set64(int64(seq - lo + 1)) }
			defer func() { _ = bar.Finish() }()
		}
		start := time.Now()
		r, err := checkpoint.VerifyLog(ctx, js, cfg)
		if err != nil {
			return err
		}
		took := time.Since(start)
		if c.json {
			if err := c.printJSON(struct {
				audit.Report
				Seconds float64 `json:"duration_seconds"`
			}{r, took.Seconds()}); err != nil {
				return err
			}
		} else if err := printVerify(c.stdout, r, took); err != nil {
			return err
		}
		if err := r.Err(); err != nil {
			return fmt.Errorf("%d fault(s), the first: %w", r.FaultCount, err)
		}
		return nil
	}
}

func printVerify(w io.Writer, r audit.Report, took time.Duration) error {
	pairs := [][2]string{
		{"messages", fmt.Sprintf("%d (seq %d..%d) in %s, %.0f msg/s", r.Messages, r.FirstSeq, r.LastSeq,
			fmtDuration(took), float64(r.Messages)/max(took.Seconds(), 1e-9))},
		{"commits", fmt.Sprintf("%d from %d clients, %d rejections, %d other", r.Commits, r.Clients, r.Rejections, r.Other)},
	}
	for _, v := range sortedKeys(r.FSMVersions) {
		pairs = append(pairs, [2]string{"fsm version", fmt.Sprintf("%s: %d commits", v, r.FSMVersions[v])})
	}
	for _, c := range r.Checks {
		pairs = append(pairs, [2]string{c.Name, string(c.Status) + ": " + c.Detail + hint(c)})
	}
	if r.Digest != "" {
		pairs = append(pairs, [2]string{"digest", r.Digest})
	}
	for i, f := range r.Faults {
		if i == 10 {
			pairs = append(pairs, [2]string{"fault", fmt.Sprintf("… %d more (--json lists them all)", r.FaultCount-10)})
			break
		}
		pairs = append(pairs, [2]string{"fault", f.Error()})
	}
	// Never a bare OK: the verdict names every check and what it found.
	pairs = append(pairs, [2]string{"verdict", r.Verdict()})
	return writeFields(w, pairs...)
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

// checkpointCmd signs and publishes a checkpoint of the events stream now.
func (c *cli) checkpointCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("checkpoint", "sign and publish a checkpoint of the log now")
	var keyFile string
	c.envFlag(cmd, "key", "ed25519 private key (PEM, from studyctl keygen)", "STUDYCTL_KEY").PlaceHolder("FILE").StringVar(&keyFile)
	return cmd.FullCommand(), func(ctx context.Context) error {
		return c.checkpoint(ctx, keyFile)
	}
}

func (c *cli) checkpoint(ctx context.Context, keyFile string) error {
	if keyFile == "" {
		return fmt.Errorf("give --key FILE (or $STUDYCTL_KEY): the private key from studyctl keygen")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	key, err := audit.ParsePrivateKey(b)
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	js, closer, err := c.jsConnect("checkpoint")
	if err != nil {
		return err
	}
	defer closer()
	cp, err := checkpoint.Write(ctx, js, key, checkpoint.Options{})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(cp)
	}
	_, err = fmt.Fprintf(c.stdout, "checkpoint of %s: %d messages through seq %d, digest %s, key %s, at %s\n",
		cp.Stream, cp.Count, cp.Seq, cp.Digest, cp.KeyID, cp.At.Format(time.RFC3339))
	return err
}

// keygenCmd writes a new checkpoint signing key: FILE (private) and FILE.pub.
func (c *cli) keygenCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("keygen", "write a new ed25519 key for signing checkpoints, or (--commit) a commit key")
	var out string
	var commit bool
	cmd.Flag("out", "private key file to write; the public key goes to FILE.pub").Default("studyd-checkpoint.key").PlaceHolder("FILE").StringVar(&out)
	cmd.Flag("commit", "write a commit key instead (studyd --commit-key, verify --commit-key): a secret shared by studyd's instances and the auditor, no .pub").UnNegatableBoolVar(&commit)
	return cmd.FullCommand(), func(context.Context) error {
		if commit {
			return c.keygenCommit(out)
		}
		return c.keygen(out)
	}
}

func (c *cli) keygen(out string) error {
	priv, pub, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	// O_EXCL: never overwrite a key that may have signed checkpoints.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out+".pub", pub, 0o644); err != nil {
		return err
	}
	k, err := audit.ParsePublicKey(pub)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]string{"private": out, "public": out + ".pub", "key_id": audit.KeyID(k)})
	}
	_, err = fmt.Fprintf(c.stdout, "wrote %s (private, keep it secret) and %s.pub (for verify --pubkey); key id %s\n", out, out, audit.KeyID(k))
	return err
}

// keygenCommit writes a new commit key to out (mode 0600, never over an existing file).
func (c *cli) keygenCommit(out string) error {
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
	if c.json {
		return c.printJSON(map[string]string{"commit_key": out, "key_id": k.ID()})
	}
	_, err = fmt.Fprintf(c.stdout, "wrote %s (secret: for studyd --commit-key and verify --commit-key); key id %s\n", out, k.ID())
	return err
}
