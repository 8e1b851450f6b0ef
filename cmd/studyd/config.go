package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/internal/buildinfo"
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
	CacheBytes int // bound of the client cache in bytes
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
	// Sync is when the embedded server fsyncs its file store: SyncAlways before every
	// acknowledgement, or every SyncInterval (see the README on what an ack means).
	Sync syncMode
	// PoisonAfter is how many times in a row a command may fail the same way before it
	// is parked and its partition moves on.
	PoisonAfter int
	// Window is how many commands of one partition an instance holds at once.
	Window int
	// Append is how a batch of commits is written: "atomic" (one JetStream atomic
	// batch: one fsync), "async" (every publish in flight at once) or "auto" (atomic
	// when the embedded server syncs every write, async otherwise).
	Append string
	// AtNotBefore and AtMaxAhead are the accepted range of a command's at
	// (domain.AtRange).
	AtNotBefore time.Time
	AtMaxAhead  time.Duration
}

// syncMode is the --sync setting: always, or an interval.
type syncMode struct {
	Always   bool
	Interval time.Duration
	set      bool // given by flag or env (it applies to the embedded server only)
}

// String renders the setting as the flag takes it.
func (s syncMode) String() string {
	if s.Always {
		return "always"
	}
	return s.Interval.String()
}

// Set parses "always" or a duration of at least 1ms.
func (s *syncMode) Set(v string) error {
	if v == "always" {
		*s = syncMode{Always: true, set: true}
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Millisecond {
		return fmt.Errorf("want always or an interval such as 100ms or 2m, got %q", v)
	}
	*s = syncMode{Interval: d, set: true}
	return nil
}

// MarshalText logs the setting as the flag takes it.
func (s syncMode) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

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
		CacheBytes: app.DefaultCacheBytes,
		LogFormat:  "text",

		CheckpointEvery: time.Minute,
		Sync:            syncMode{Always: true},
		PoisonAfter:     5,
		Window:          intake.DefaultWindow,
		Append:          "auto",
		AtNotBefore:     domain.DefaultAtRange.NotBefore,
		AtMaxAhead:      domain.DefaultAtRange.MaxAhead,
	}
}

// atRange is the accepted range of a command's at.
func (c config) atRange() domain.AtRange {
	return domain.AtRange{NotBefore: c.AtNotBefore, MaxAhead: c.AtMaxAhead}
}

// embedded reports whether studyd runs its own nats-server.
func (c config) embedded() bool { return c.NATSURL == "" }

// atomicAppends reports whether batches of commits are written as atomic batches:
// measured in docs/BENCHMARKS.md, they pay off where every write costs an fsync.
func (c config) atomicAppends() bool {
	return c.Append == "atomic" || c.Append == "auto" && c.embedded() && c.Sync.Always
}

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
	if c.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("--cache-bytes %d: want at least 1MiB", c.CacheBytes))
	}
	if c.CheckpointKey != "" && c.CheckpointEvery < time.Second {
		errs = append(errs, fmt.Errorf("--checkpoint-every %s: want at least 1s", c.CheckpointEvery))
	}
	if !c.embedded() && c.Sync.set {
		errs = append(errs, errors.New("--sync applies to the embedded server; on a cluster set sync_interval in the servers' jetstream config"))
	}
	if c.Append != "auto" && c.Append != "atomic" && c.Append != "async" {
		errs = append(errs, fmt.Errorf("--append %q: want auto, atomic or async", c.Append))
	}
	if c.Window < 1 || c.Window > 1000 {
		errs = append(errs, fmt.Errorf("--window %d: want 1..1000", c.Window))
	}
	if c.PoisonAfter < 2 || c.PoisonAfter > 1000 {
		errs = append(errs, fmt.Errorf("--poison-after %d: want 2..1000", c.PoisonAfter))
	}
	if c.AtMaxAhead <= 0 {
		errs = append(errs, fmt.Errorf("--at-max-ahead %s: want more than 0 (a client's clock runs ahead of the server's)", c.AtMaxAhead))
	}
	if c.AtNotBefore.IsZero() || c.AtNotBefore.After(domain.LatestRepresentable) {
		errs = append(errs, fmt.Errorf("--at-not-before %s: want a date, e.g. %s", c.AtNotBefore, domain.NormandyEpoch.Format(time.DateOnly)))
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

// errShown is parseConfig's error after --help or --version printed what was asked:
// run ends with exit status 0.
var errShown = errors.New("shown")

// parseConfig reads flags, each with a STUDYD_* environment fallback. A bad flag or
// environment value is an error naming it; --help and --version print to stdout and
// return errShown.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("studyd", flag.ContinueOnError)
	// The flag package would print errors and the usage itself; studyd prints the usage
	// for --help (to stdout) and returns errors for main to print, once.
	fs.SetOutput(io.Discard)
	usage := func() {
		fmt.Fprintf(fs.Output(), "usage: studyd [flags]\n\n"+
			"studyd applies Normandy study commands from NATS JetStream, appends their events to\n"+
			"the log and keeps the views current. Every flag has an environment fallback.\n\nflags:\n")
		fs.PrintDefaults()
	}
	// Environment values are parsed like the flags; each bad one is reported.
	var envErrs []error
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("$%s=%q: not a whole number", name, v))
			return def
		}
		return n
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("$%s=%q: not a duration (e.g. 5s, 1m)", name, v))
			return def
		}
		return d
	}
	fs.StringVar(&cfg.DataDir, "data", env("STUDYD_DATA", cfg.DataDir), "data directory of the embedded nats-server (env STUDYD_DATA)")
	fs.StringVar(&cfg.NATSListen, "nats-listen", env("STUDYD_NATS_LISTEN", cfg.NATSListen), "client address of the embedded nats-server (env STUDYD_NATS_LISTEN)")
	fs.StringVar(&cfg.NATSURL, "nats-url", env("STUDYD_NATS_URL", ""), "use this NATS server or cluster (comma-separated URLs) instead of embedding one (env STUDYD_NATS_URL)")
	fs.StringVar(&cfg.HTTP, "http", env("STUDYD_HTTP", cfg.HTTP), "address for /healthz, /readyz and /metrics; empty disables (env STUDYD_HTTP)")
	fs.IntVar(&cfg.Partitions, "partitions", envInt("STUDYD_PARTITIONS", cfg.Partitions), "command partitions (fixed when STUDYD_CMDS is created) (env STUDYD_PARTITIONS)")
	fs.IntVar(&cfg.Replicas, "replicas", envInt("STUDYD_REPLICAS", cfg.Replicas), "stream replicas: 1, or 3/5 on a cluster (env STUDYD_REPLICAS)")
	fs.DurationVar(&cfg.AckWait, "ack-wait", envDuration("STUDYD_ACK_WAIT", cfg.AckWait), "how long a command may be in flight before another instance takes it over (env STUDYD_ACK_WAIT)")
	fs.IntVar(&cfg.CacheSize, "cache", envInt("STUDYD_CACHE", cfg.CacheSize), "clients whose latest state is cached (env STUDYD_CACHE)")
	cacheBytes := fs.String("cache-bytes", env("STUDYD_CACHE_BYTES", formatBytes(cfg.CacheBytes)), "memory bound of the client cache, e.g. 128MiB, 1GiB (env STUDYD_CACHE_BYTES)")
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
	if v := getenv("STUDYD_SYNC"); v != "" {
		if err := cfg.Sync.Set(v); err != nil {
			return config{}, fmt.Errorf("STUDYD_SYNC: %w", err)
		}
	}
	fs.Var(&cfg.Sync, "sync", "when the embedded server writes to disk: always (before every acknowledgement) or an interval such as 1s (env STUDYD_SYNC)")
	fs.StringVar(&cfg.Append, "append", env("STUDYD_APPEND", cfg.Append), "how a batch of commits is written: atomic (one atomic batch, one fsync), async (all publishes in flight), or auto (atomic when the embedded server syncs always) (env STUDYD_APPEND)")
	fs.IntVar(&cfg.Window, "window", envInt("STUDYD_WINDOW", cfg.Window), "commands of one partition decided and appended together, at most (env STUDYD_WINDOW)")
	fs.IntVar(&cfg.PoisonAfter, "poison-after", envInt("STUDYD_POISON_AFTER", cfg.PoisonAfter), "park a command after it failed this many times in a row the same way (env STUDYD_POISON_AFTER)")
	notBefore := fs.String("at-not-before", env("STUDYD_AT_NOT_BEFORE", cfg.AtNotBefore.Format(time.DateOnly)), "earliest accepted command time (date or RFC 3339) (env STUDYD_AT_NOT_BEFORE)")
	fs.DurationVar(&cfg.AtMaxAhead, "at-max-ahead", envDuration("STUDYD_AT_MAX_AHEAD", cfg.AtMaxAhead), "how far past the server clock a command's time may be (env STUDYD_AT_MAX_AHEAD)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			usage()
			return config{}, errShown
		}
		return config{}, fmt.Errorf("%w (studyd --help lists the flags)", err)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "studyd", buildinfo.Version())
		return config{}, errShown
	}
	if len(envErrs) > 0 {
		return config{}, errors.Join(envErrs...)
	}
	var err error
	if cfg.CacheBytes, err = parseBytes(*cacheBytes); err != nil {
		return config{}, fmt.Errorf("--cache-bytes: %w", err)
	}
	if cfg.AtNotBefore, err = parseDateOrTime(*notBefore); err != nil {
		return config{}, fmt.Errorf("--at-not-before: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err = cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return config{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
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

// byteUnits are the suffixes parseBytes reads, largest first.
var byteUnits = []struct {
	suffix string
	n      int
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}

// parseBytes reads a size in bytes: a whole number, optionally followed by KiB, MiB,
// GiB or B.
func parseBytes(v string) (int, error) {
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || n < 0 || n > math.MaxInt/u.n {
				break
			}
			return n * u.n, nil
		}
	}
	return 0, fmt.Errorf("%q: want a size such as 134217728, 128MiB or 1GiB", v)
}

// formatBytes writes n in the largest unit that divides it.
func formatBytes(n int) string {
	for _, u := range byteUnits {
		if n != 0 && n%u.n == 0 {
			return strconv.Itoa(n/u.n) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// parseDateOrTime reads 2016-01-01 (midnight UTC) or an RFC 3339 time.
func parseDateOrTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2016-01-01) nor an RFC 3339 time", v)
	}
	return t.UTC(), nil
}

// LogValue is the effective configuration as log attributes: durations as durations,
// secrets masked, the connection settings only when studyd dials an external NATS.
func (c config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("data", c.DataDir),
		slog.String("nats_listen", c.NATSListen),
		slog.String("nats_url", c.NATSURL),
		slog.String("http", c.HTTP),
		slog.Int("partitions", c.Partitions),
		slog.Int("replicas", c.Replicas),
		slog.String("ack_wait", c.AckWait.String()),
		slog.Int("cache", c.CacheSize),
		slog.String("cache_bytes", formatBytes(c.CacheBytes)),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
		slog.String("checkpoint_key", c.CheckpointKey),
		slog.String("checkpoint_every", c.CheckpointEvery.String()),
		slog.String("at_not_before", c.AtNotBefore.Format(time.RFC3339)),
		slog.String("at_max_ahead", c.AtMaxAhead.String()),
		slog.String("sync", c.Sync.String()),
		slog.Int("poison_after", c.PoisonAfter),
		slog.Int("window", c.Window),
		slog.String("append", c.Append),
	}
	if c.embedded() {
		attrs[2] = slog.String("nats_url", "(embedded)")
	} else {
		attrs[1] = slog.String("nats_listen", "-")
		r := c.Conn.Redacted()
		for _, a := range []struct{ k, v string }{{"user", r.User}, {"password", r.Password}, {"token", r.Token},
			{"nkey", r.NKeyFile}, {"creds", r.CredsFile}, {"tlscert", r.TLSCert}, {"tlskey", r.TLSKey}, {"tlsca", r.TLSCA}} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
	}
	return slog.GroupValue(attrs...)
}
