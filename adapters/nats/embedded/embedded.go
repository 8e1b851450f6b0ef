package embedded

import (
	"errors"
	"fmt"
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

// Start starts a nats-server with JetStream on cfg.StoreDir and returns it once
// it accepts connections. The caller owns it: Shutdown, then WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
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
		NoLog:                  cfg.Logger == nil,
		DisableJetStreamBanner: true,
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
	if cfg.Logger != nil {
		s.SetLoggerV2(cfg.Logger, false, false, false)
	}
	wait := cfg.ReadyTimeout
	if wait == 0 {
		wait = DefaultReadyTimeout
	}
	go s.Start()
	if !s.ReadyForConnections(wait) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats-server: not ready for connections after %s", wait)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats-server: JetStream did not start (store dir %s)", cfg.StoreDir)
	}
	return s, nil
}
