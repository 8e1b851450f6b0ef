package client

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a NATS connection; the alias lets commands hold one without importing nats.go.
type Conn = nats.Conn

// ConnConfig says how to reach NATS, the way the nats CLI does.
type ConnConfig struct {
	URLs      string // comma-separated nats:// URLs
	Name      string // connection name shown by the server
	User      string
	Password  string
	Token     string
	NKeyFile  string // an nkey seed file
	CredsFile string // a JWT user credentials file
	TLSCert   string
	TLSKey    string
	TLSCA     string
	// Timeout bounds the dial (default 5s).
	Timeout time.Duration
}

// Validate reports contradictory settings.
func (c ConnConfig) Validate() error {
	if c.URLs == "" {
		return errors.New("nats: no server URL")
	}
	auth := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.NKeyFile != "", c.CredsFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return errors.New("nats: give only one of user/password, token, nkey or creds")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("nats: a TLS client certificate needs both --tlscert and --tlskey")
	}
	return nil
}

// Redacted returns c with secrets masked, for logging the effective config.
func (c ConnConfig) Redacted() ConnConfig {
	if c.Password != "" {
		c.Password = "*****"
	}
	if c.Token != "" {
		c.Token = "*****"
	}
	return c
}

// Connect dials NATS with c, reconnecting forever: studyd and studyctl should ride out
// a server restart or a cluster failover rather than exit.
func Connect(c ConnConfig) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(cmp.Or(c.Timeout, 5*time.Second)),
		// Notice a dead or paused server in seconds, not the default two minutes, so the
		// client fails over to another cluster node quickly.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey %s: %w", c.NKeyFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	nc, err := nats.Connect(strings.TrimSpace(c.URLs), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.URLs, err)
	}
	return nc, nil
}

// JetStream is a JetStream handle; the alias lets tools hold one without importing
// nats.go.
type JetStream = jetstream.JetStream

// JetStreamOf returns the JetStream handle of a connection, for tools (studyctl) that
// call this package's replay and audit functions without importing nats.go.
func JetStreamOf(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}
