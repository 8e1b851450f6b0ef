package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/app"
)

// config is studyd's effective configuration.
type config struct {
	DataDir    string
	NATSListen string // the embedded server's client address
	NATSURL    string // an existing NATS (cluster) instead of the embedded server
	HTTP       string
	Partitions int
	Replicas   int
	AckWait    time.Duration
	CacheSize  int
	LogLevel   slog.Level
	LogFormat  string
	Conn       client.ConnConfig
	// CheckpointKey is an ed25519 private key (PEM, from `studyctl keygen`); when set,
	// studyd writes a signed audit checkpoint every CheckpointEvery.
	CheckpointKey   string
	CheckpointEvery time.Duration
	// CommitKey is the file of the key studyd authenticates every commit and rejection
	// with (see audit.CommitKey). On the embedded default it is <data>/commit.key,
	// created (mode 0600) on first start; on a cluster every instance must be given the
	// same file (studyctl keygen --commit), or commits go unauthenticated.
	CommitKey string
	// ReplyPrefixes are the subject prefixes Studyd-Reply-To may name (inboxes).
	ReplyPrefixes []string
	// ResetViews deletes the views at start so that they are rebuilt from the log as
	// it is: the deliberate way past a log that lost its history.
	ResetViews bool
}

// defaults, documented in the README.
func defaultConfig() config {
	return config{
		DataDir:    "./data",
		NATSListen: "127.0.0.1:4222",
		HTTP:       "127.0.0.1:9180",
		Partitions: 16,
		Replicas:   1,
		AckWait:    5 * time.Second,
		CacheSize:  100_000,
		LogFormat:  "text",

		CheckpointEvery: time.Minute,
	}
}

// embedded reports whether studyd runs its own nats-server.
func (c config) embedded() bool { return c.NATSURL == "" }

// Validate rejects settings studyd cannot run with.
func (c config) Validate() error {
	var errs []error
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("--partitions %d: want 1..1024", c.Partitions))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1, 3 or 5", c.Replicas))
	}
	if c.embedded() && c.Replicas != 1 {
		errs = append(errs, errors.New("--replicas > 1 needs a cluster: give --nats-url"))
	}
	if c.embedded() && c.DataDir == "" {
		errs = append(errs, errors.New("--data is empty: the embedded server needs a directory"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("--ack-wait %s: want at least 1s", c.AckWait))
	}
	if c.CheckpointKey != "" && c.CheckpointEvery < time.Second {
		errs = append(errs, fmt.Errorf("--checkpoint-every %s: want at least 1s", c.CheckpointEvery))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if !c.embedded() {
		errs = append(errs, c.Conn.Validate())
	}
	if err := (app.ReplyPolicy{Prefixes: c.ReplyPrefixes}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--reply-prefix: %w", err))
	}
	return errors.Join(errs...)
}

// parseConfig reads flags, each with a STUDYD_* environment fallback.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("studyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		if v, err := strconv.Atoi(getenv(name)); err == nil {
			return v
		}
		return def
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		if v, err := time.ParseDuration(getenv(name)); err == nil {
			return v
		}
		return def
	}
	fs.StringVar(&cfg.DataDir, "data", env("STUDYD_DATA", cfg.DataDir), "data directory of the embedded nats-server (env STUDYD_DATA)")
	fs.StringVar(&cfg.NATSListen, "nats-listen", env("STUDYD_NATS_LISTEN", cfg.NATSListen), "client address of the embedded nats-server (env STUDYD_NATS_LISTEN)")
	fs.StringVar(&cfg.NATSURL, "nats-url", env("STUDYD_NATS_URL", ""), "use this NATS server or cluster (comma-separated URLs) instead of embedding one (env STUDYD_NATS_URL)")
	fs.StringVar(&cfg.HTTP, "http", env("STUDYD_HTTP", cfg.HTTP), "address for /healthz, /readyz and /metrics; empty disables (env STUDYD_HTTP)")
	fs.IntVar(&cfg.Partitions, "partitions", envInt("STUDYD_PARTITIONS", cfg.Partitions), "command partitions (fixed when STUDYD_CMDS is created) (env STUDYD_PARTITIONS)")
	fs.IntVar(&cfg.Replicas, "replicas", envInt("STUDYD_REPLICAS", cfg.Replicas), "stream replicas: 1, or 3/5 on a cluster (env STUDYD_REPLICAS)")
	fs.DurationVar(&cfg.AckWait, "ack-wait", envDuration("STUDYD_ACK_WAIT", cfg.AckWait), "how long a command may be in flight before another instance takes it over (env STUDYD_ACK_WAIT)")
	fs.IntVar(&cfg.CacheSize, "cache", envInt("STUDYD_CACHE", cfg.CacheSize), "clients whose latest state is cached (env STUDYD_CACHE)")
	level := fs.String("log-level", env("STUDYD_LOG_LEVEL", "info"), "debug, info, warn or error (env STUDYD_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("STUDYD_LOG_FORMAT", cfg.LogFormat), "text or json (env STUDYD_LOG_FORMAT)")
	fs.StringVar(&cfg.Conn.User, "user", env("STUDYD_NATS_USER", ""), "NATS user (env STUDYD_NATS_USER)")
	fs.StringVar(&cfg.Conn.Password, "password", env("STUDYD_NATS_PASSWORD", ""), "NATS password (env STUDYD_NATS_PASSWORD)")
	fs.StringVar(&cfg.Conn.Token, "token", env("STUDYD_NATS_TOKEN", ""), "NATS token (env STUDYD_NATS_TOKEN)")
	fs.StringVar(&cfg.Conn.NKeyFile, "nkey", env("STUDYD_NATS_NKEY", ""), "NATS nkey seed file (env STUDYD_NATS_NKEY)")
	fs.StringVar(&cfg.Conn.CredsFile, "creds", env("STUDYD_NATS_CREDS", ""), "NATS credentials file (env STUDYD_NATS_CREDS)")
	fs.StringVar(&cfg.Conn.TLSCert, "tlscert", env("STUDYD_NATS_TLSCERT", ""), "TLS client certificate (env STUDYD_NATS_TLSCERT)")
	fs.StringVar(&cfg.Conn.TLSKey, "tlskey", env("STUDYD_NATS_TLSKEY", ""), "TLS client key (env STUDYD_NATS_TLSKEY)")
	fs.StringVar(&cfg.Conn.TLSCA, "tlsca", env("STUDYD_NATS_TLSCA", ""), "TLS CA certificate (env STUDYD_NATS_TLSCA)")
	fs.StringVar(&cfg.CheckpointKey, "checkpoint-key", env("STUDYD_CHECKPOINT_KEY", ""), "ed25519 key (PEM) to sign periodic audit checkpoints; empty disables (env STUDYD_CHECKPOINT_KEY)")
	fs.StringVar(&cfg.CommitKey, "commit-key", env("STUDYD_COMMIT_KEY", ""), "key file authenticating every commit (studyctl keygen --commit); default <data>/commit.key on the embedded server, created on first start (env STUDYD_COMMIT_KEY)")
	fs.BoolVar(&cfg.ResetViews, "reset-views", getenv("STUDYD_RESET_VIEWS") == "true", "delete the views at start and rebuild them from the log as it is (after the log lost its history; see README, Security) (env STUDYD_RESET_VIEWS=true)")
	replyPrefixes := fs.String("reply-prefix", env("STUDYD_REPLY_PREFIX", strings.Join(app.DefaultReplyPrefixes, ",")), "comma-separated subject prefixes a command's Studyd-Reply-To may name: inboxes only (env STUDYD_REPLY_PREFIX)")
	fs.DurationVar(&cfg.CheckpointEvery, "checkpoint-every", envDuration("STUDYD_CHECKPOINT_EVERY", cfg.CheckpointEvery), "interval between signed checkpoints (env STUDYD_CHECKPOINT_EVERY)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return config{}, fmt.Errorf("--log-level: %w", err)
	}
	cfg.Conn.URLs = cfg.NATSURL
	for p := range strings.SplitSeq(*replyPrefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.ReplyPrefixes = append(cfg.ReplyPrefixes, p)
		}
	}
	if err := cfg.Validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}
