package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/studyd/studyd/adapters/nats/client"
)

// env is what every subcommand gets: its streams, the environment, and the global
// connection flags, which each subcommand registers on its own FlagSet.
type env struct {
	name   string
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	conn client.ConnConfig
	json bool
}

// flags returns a FlagSet for the subcommand with the connection flags and --json.
func (e *env) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("studyctl "+e.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	url := e.getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	fs.StringVar(&e.conn.URLs, "server", url, "NATS server URL(s), comma-separated (env NATS_URL)")
	fs.StringVar(&e.conn.User, "user", e.getenv("NATS_USER"), "NATS user (env NATS_USER)")
	fs.StringVar(&e.conn.Password, "password", e.getenv("NATS_PASSWORD"), "NATS password (env NATS_PASSWORD)")
	fs.StringVar(&e.conn.NKeyFile, "nkey", e.getenv("NATS_NKEY"), "NATS nkey seed file (env NATS_NKEY)")
	fs.StringVar(&e.conn.CredsFile, "creds", e.getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS)")
	fs.StringVar(&e.conn.TLSCert, "tlscert", e.getenv("NATS_CERT"), "TLS client certificate (env NATS_CERT)")
	fs.StringVar(&e.conn.TLSKey, "tlskey", e.getenv("NATS_KEY"), "TLS client key (env NATS_KEY)")
	fs.StringVar(&e.conn.TLSCA, "tlsca", e.getenv("NATS_CA"), "TLS CA certificate (env NATS_CA)")
	fs.BoolVar(&e.json, "json", false, "print machine-readable JSON instead of a table")
	return fs
}

// connect dials NATS with the parsed connection flags.
func (e *env) connect() (*client.Conn, error) {
	e.conn.Name = "studyctl " + e.name
	return client.Connect(e.conn)
}

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
