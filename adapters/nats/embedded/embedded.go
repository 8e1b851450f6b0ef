package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ConnectInProcess connects to an embedded server without a socket.
func ConnectInProcess(ns *server.Server, name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("nats: connect in-process: %w", err)
	}
	return nc, nil
}

// Defaults of an embedded server.
const (
	// DefaultMaxPayload leaves headroom above domain.MaxCommandPayload (1 MiB): a commit
	// carries the client's whole state besides the command's events, and a rejection
	// carries part of the payload it refused.
	DefaultMaxPayload = 8 << 20
	// DefaultReadyTimeout is how long Start waits for the server to accept
	// clients (JetStream recovers its store before that, which can take a while).
	DefaultReadyTimeout = 30 * time.Second
)

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("embedded: invalid embedded server config")

// Config configures the nats-server studyd runs in-process when no external NATS
// is given.
type Config struct {
	// StoreDir holds JetStream's file store. Required: the log must survive restarts.
	StoreDir string
	// Listen is the host:port clients (the nats CLI, studyctl) connect to, e.g.
	// "127.0.0.1:4222"; port -1 picks a free port. Empty means no listener: in-process
	// connections only (nats.InProcessServer).
	Listen string
	// ServerName names the server in logs and in JetStream's metadata; "" lets the server
	// pick its id.
	ServerName string
	// MaxPayload is the largest message accepted; 0 means DefaultMaxPayload.
	MaxPayload int32
	// MaxStore caps JetStream's file store in bytes; 0 means no cap beyond the disk.
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept clients; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger, if set, receives the server's log (notices and errors, no debug/trace).
	Logger server.Logger
	// Roles, if set, authenticates every connection into studyd's roles (see Roles);
	// connect as studyd with Roles.Connect. Nil leaves the server open to anyone who
	// can reach it (tests and benchmarks).
	Roles *Roles
	// Log, if set and Logger is not, receives the server's notices, warnings and
	// errors as slog records (key "component" = "nats-server").
	Log *slog.Logger
	// SyncAlways makes the server fsync its file store before acknowledging each
	// write; otherwise it syncs every SyncInterval (0: the server's default, 2m), and
	// an acknowledged write lives in the OS page cache until then.
	SyncAlways   bool
	SyncInterval time.Duration
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	if c.StoreDir == "" {
		return fmt.Errorf("%w: StoreDir is empty (JetStream needs a directory for its file store)", ErrConfig)
	}
	if c.Listen != "" {
		if _, _, err := splitListen(c.Listen); err != nil {
			return err
		}
	}
	if c.MaxPayload < 0 {
		return fmt.Errorf("%w: MaxPayload %d is negative", ErrConfig, c.MaxPayload)
	}
	if c.SyncInterval < 0 {
		return fmt.Errorf("%w: SyncInterval %s is negative", ErrConfig, c.SyncInterval)
	}
	if c.MaxStore < 0 {
		return fmt.Errorf("%w: MaxStore %d is negative", ErrConfig, c.MaxStore)
	}
	return nil
}

func splitListen(listen string) (string, int, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("%w: Listen %q is not host:port: %w", ErrConfig, listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: Listen %q has port %q (want 0..65535, or -1 for a random port)", ErrConfig, listen, portText)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// Start is StartContext without a way to stop the wait.
func Start(cfg Config) (*server.Server, error) { return StartContext(context.Background(), cfg) }

// StartContext starts a nats-server with JetStream on cfg.StoreDir and returns it once
// it accepts connections. The caller owns it: Shutdown, then WaitForShutdown. It fails
// at once, with the server's own words, when the server reports a fatal error (e.g.
// its address is in use); it gives up when ctx ends or after cfg.ReadyTimeout.
func StartContext(ctx context.Context, cfg Config) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:             cfg.ServerName,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		JetStreamMaxStore:      cfg.MaxStore,
		MaxPayload:             cfg.MaxPayload,
		NoSigs:                 true, // the process owning the server handles signals
		DisableJetStreamBanner: true,
		SyncAlways:             cfg.SyncAlways,
		SyncInterval:           cfg.SyncInterval,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	// A client's pending buffer must hold at least one maximal message.
	opts.MaxPending = max(int64(opts.MaxPayload)*4, 64<<20)
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, _ := splitListen(cfg.Listen)
		opts.Host, opts.Port = host, port
	}
	if cfg.Roles != nil {
		if err := cfg.Roles.apply(opts); err != nil {
			return nil, fmt.Errorf("start embedded nats-server: %w", err)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats-server: %w", err)
	}
	// Always a logger of ours: a fatal error (the server's Fatalf, which would exit
	// the process with its own logger) must reach the caller instead.
	logger := &watchLogger{next: cfg.Logger, fatal: make(chan string, 1)}
	if logger.next == nil && cfg.Log != nil {
		logger.next = slogLogger{cfg.Log.With("component", "nats-server")}
	}
	s.SetLoggerV2(logger, false, false, false)
	wait := cfg.ReadyTimeout
	if wait == 0 {
		wait = DefaultReadyTimeout
	}
	fail := func(err error) (*server.Server, error) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats-server: %w", err)
	}
	go s.Start()
	deadline := time.Now().Add(wait)
	for !s.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-logger.fatal:
			return fail(errors.New(msg))
		default:
		}
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("stopped before it was ready: %w", err))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("not ready for connections after %s", wait))
		}
	}
	if !s.JetStreamEnabled() {
		return fail(fmt.Errorf("JetStream did not start (store dir %s)", cfg.StoreDir))
	}
	return s, nil
}

// watchLogger passes the server's log on and keeps its first fatal error.
type watchLogger struct {
	next  server.Logger // nil: discard
	fatal chan string
}

func (l *watchLogger) Noticef(format string, v ...any) {
	if l.next != nil {
		l.next.Noticef(format, v...)
	}
}

func (l *watchLogger) Warnf(format string, v ...any) {
	if l.next != nil {
		l.next.Warnf(format, v...)
	}
}

func (l *watchLogger) Errorf(format string, v ...any) {
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
}

// Fatalf never exits: the error is handed to StartContext (or logged, after start).
func (l *watchLogger) Fatalf(format string, v ...any) {
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
	select {
	case l.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}

func (l *watchLogger) Debugf(string, ...any) {}
func (l *watchLogger) Tracef(string, ...any) {}

// slogLogger is a server.Logger writing to slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l slogLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l slogLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
