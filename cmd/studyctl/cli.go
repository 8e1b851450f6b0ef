package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/internal/buildinfo"
)

// cli is what every command gets: its streams, the environment, and the global flags.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// The connection flags, as natscli spells them.
	server, user, password, token, creds, nkey string
	tlsCert, tlsKey, tlsCA                     string
	natsContext                                string
	timeout                                    time.Duration
	json                                       bool

	envs []envBinding
}

// envBinding is a flag whose default comes from an environment variable.
type envBinding struct {
	flag    *fisk.FlagClause
	name    string // the flag, for the error message
	env     string
	command string // the command declaring it; "" for a global flag
}

func newCLI(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *cli {
	return &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
}

// appHelp is studyctl's one-paragraph description, the head of `studyctl --help`.
const appHelp = `studyd's command-line client: publish commands, simulate a fleet, query and watch the views, replay, export and verify the log.

Connects like the nats CLI: --server, --context and the credentials flags (or their NATS_* environment variables) go anywhere on the line.`

// version is studyctl's version, from the build (runtime/debug.ReadBuildInfo).
func version() string { return "studyctl " + buildinfo.Version() }

// flagger is an application or a command: what flags are declared on.
type flagger interface {
	Flag(name, help string) *fisk.FlagClause
}

// envFlag declares a flag whose default comes from the environment variable env.
func (c *cli) envFlag(on flagger, name, help, env string) *fisk.FlagClause {
	fc := on.Flag(name, fmt.Sprintf("%s ($%s)", help, env))
	b := envBinding{flag: fc, name: name, env: env}
	if cmd, ok := on.(*fisk.CmdClause); ok {
		b.command = cmd.FullCommand()
	}
	c.envs = append(c.envs, b)
	return fc
}

// applyEnv makes each set environment variable its flag's default, after checking it
// parses, and returns a function that reports the bad ones among those that apply to
// the selected command (and the global ones): a bad value is an error naming the
// variable, never silently ignored. Values go through run's getenv (not fisk's own
// os.Getenv) so tests can set them.
func (c *cli) applyEnv() func(command string) error {
	var bad []envBinding
	var errs []error
	for _, b := range c.envs {
		v := c.getenv(b.env)
		if v == "" {
			continue
		}
		if err := b.flag.Model().Value.Set(v); err != nil {
			bad = append(bad, b)
			errs = append(errs, fmt.Errorf("$%s=%q is not a valid --%s: %w", b.env, v, b.name, err))
			continue
		}
		b.flag.Default(v)
	}
	return func(command string) error {
		var out []error
		for i, b := range bad {
			if b.command == "" || b.command == command {
				out = append(out, errs[i])
			}
		}
		return errors.Join(out...)
	}
}

// app declares studyctl's commands and flags and returns the handler of each command.
func (c *cli) app() (*fisk.Application, map[string]func(context.Context) error) {
	app := fisk.New("studyctl", appHelp)
	app.UsageTemplate(fisk.CompactMainUsageTemplate)
	app.ErrorUsageTemplate(fisk.CompactMainUsageTemplate)
	app.LLMExtraInformation("")
	app.UsageWriter(c.stdout)
	app.ErrorWriter(c.stderr)
	app.Terminate(func(code int) { panic(terminated(code)) })
	app.HelpFlag.Short('h')
	app.Version(version())

	c.envFlag(app, "server", "NATS server URLs, comma-separated (default nats://127.0.0.1:4222)", "NATS_URL").Short('s').PlaceHolder("URL").StringVar(&c.server)
	c.envFlag(app, "user", "username", "NATS_USER").PlaceHolder("USER").StringVar(&c.user)
	c.envFlag(app, "password", "password", "NATS_PASSWORD").PlaceHolder("PASSWORD").StringVar(&c.password)
	c.envFlag(app, "token", "token", "NATS_TOKEN").PlaceHolder("TOKEN").StringVar(&c.token)
	c.envFlag(app, "creds", "user credentials file (JWT)", "NATS_CREDS").PlaceHolder("FILE").StringVar(&c.creds)
	c.envFlag(app, "nkey", "user nkey seed file", "NATS_NKEY").PlaceHolder("FILE").StringVar(&c.nkey)
	c.envFlag(app, "tlscert", "TLS client certificate file", "NATS_CERT").PlaceHolder("FILE").StringVar(&c.tlsCert)
	c.envFlag(app, "tlskey", "TLS client private key file", "NATS_KEY").PlaceHolder("FILE").StringVar(&c.tlsKey)
	c.envFlag(app, "tlsca", "CA certificate file to verify the server", "NATS_CA").PlaceHolder("FILE").StringVar(&c.tlsCA)
	c.envFlag(app, "context", "nats context to connect with (nats context ls); default: the selected one", "NATS_CONTEXT").PlaceHolder("NAME").StringVar(&c.natsContext)
	c.envFlag(app, "timeout", "time to wait for a connection or an answer (default 5s)", "NATS_TIMEOUT").PlaceHolder("DURATION").Default("5s").DurationVar(&c.timeout)
	app.Flag("json", "print JSON instead of a table").Short('j').UnNegatableBoolVar(&c.json)

	handlers := map[string]func(context.Context) error{}
	for _, def := range []func(*fisk.Application) (string, func(context.Context) error){
		c.publishCmd,
		c.simulateCmd,
		c.studiesCmd,
		c.studyCmd,
		c.rolloutsCmd,
		c.uptakeCmd,
		c.clientCmd,
		c.watchCmd,
		c.rebuildCmd,
		c.auditCmd,
		c.verifyCmd,
		c.asofCmd,
		c.explainCmd,
		c.healthCmd,
		c.parkedCmd,
		c.checkpointCmd,
		c.keygenCmd,
		c.completionCmd(app),
	} {
		name, h := def(app)
		handlers[name] = h
	}
	return app, handlers
}

// completionCmd prints a shell completion script.
func (c *cli) completionCmd(app *fisk.Application) func(*fisk.Application) (string, func(context.Context) error) {
	return func(*fisk.Application) (string, func(context.Context) error) {
		cmd := app.Command("completion", "print a shell completion script: eval \"$(studyctl completion bash)\" (or zsh)")
		shell := cmd.Arg("shell", "bash or zsh").Default("bash").Enum("bash", "zsh")
		return "completion", func(context.Context) error {
			tmpl := fisk.BashCompletionTemplate
			if *shell == "zsh" {
				tmpl = fisk.ZshCompletionTemplate
			}
			pc, err := app.ParseContext(nil)
			if err != nil {
				return err
			}
			return app.UsageForContextWithTemplate(pc, 2, tmpl)
		}
	}
}

// connConfig is the connection the flags, the environment and the nats context ask
// for: a flag (or its NATS_* variable) wins over the context's setting.
func (c *cli) connConfig(name string) (client.ConnConfig, error) {
	cfg := client.ConnConfig{Name: "studyctl " + name}
	nctx, err := c.loadContext()
	if err != nil {
		return cfg, err
	}
	pick := func(flag, fromContext string) string {
		if flag != "" {
			return flag
		}
		return fromContext
	}
	cfg.URLs = pick(c.server, nctx.URL)
	if cfg.URLs == "" {
		cfg.URLs = "nats://127.0.0.1:4222"
	}
	// One way to authenticate: the flags' if any is given, else the context's.
	if c.user != "" || c.token != "" || c.creds != "" || c.nkey != "" {
		cfg.User, cfg.Password, cfg.Token, cfg.CredsFile, cfg.NKeyFile = c.user, c.password, c.token, c.creds, c.nkey
	} else {
		cfg.User, cfg.Password, cfg.Token, cfg.CredsFile, cfg.NKeyFile = nctx.User, nctx.Password, nctx.Token, nctx.Creds, nctx.NKey
	}
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = pick(c.tlsCert, nctx.Cert), pick(c.tlsKey, nctx.Key), pick(c.tlsCA, nctx.CA)
	cfg.Timeout = c.timeout
	return cfg, nil
}

// natsContext is the part of a nats CLI context (~/.config/nats/context/NAME.json)
// that studyctl uses. It is read here rather than with jsm.go's natscontext, which
// would link parts of nats-server into studyctl.
type natsContext struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Token    string `json:"token"`
	Creds    string `json:"creds"`
	NKey     string `json:"nkey"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	CA       string `json:"ca"`
}

// loadContext reads the context named by --context, else the nats CLI's selected one
// (context.txt); no selected context is the empty context. A named context that does
// not exist is an error.
func (c *cli) loadContext() (natsContext, error) {
	var nctx natsContext
	dir := c.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := c.getenv("HOME")
		if home == "" {
			if c.natsContext != "" {
				return nctx, fmt.Errorf("--context %s: no $HOME or $XDG_CONFIG_HOME to find it under", c.natsContext)
			}
			return nctx, nil
		}
		dir = filepath.Join(home, ".config")
	}
	dir = filepath.Join(dir, "nats")
	name := c.natsContext
	if name == "" {
		b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
		if err != nil {
			return nctx, nil // no context selected
		}
		if name = strings.TrimSpace(string(b)); name == "" {
			return nctx, nil
		}
	}
	if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nctx, fmt.Errorf("--context %q: not a context name", name)
	}
	file := filepath.Join(dir, "context", name+".json")
	b, err := os.ReadFile(file)
	if err != nil {
		return nctx, fmt.Errorf("nats context %q: %w", name, err)
	}
	if err := json.Unmarshal(b, &nctx); err != nil {
		return nctx, fmt.Errorf("nats context %q: %s: %w", name, file, err)
	}
	for _, p := range []*string{&nctx.Creds, &nctx.NKey, &nctx.Cert, &nctx.Key, &nctx.CA} {
		*p = c.expandHome(*p)
	}
	return nctx, nil
}

// expandHome expands a leading ~/ as the nats CLI does in context file paths.
func (c *cli) expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home := c.getenv("HOME"); home != "" {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// connect dials NATS for the command name.
func (c *cli) connect(name string) (*client.Conn, error) {
	cfg, err := c.connConfig(name)
	if err != nil {
		return nil, err
	}
	return client.Connect(cfg)
}

// jsConnect dials NATS and returns the JetStream handle with a closer.
func (c *cli) jsConnect(name string) (client.JetStream, func(), error) {
	nc, err := c.connect(name)
	if err != nil {
		return nil, nil, err
	}
	js, err := client.JetStreamOf(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// printJSON writes v as indented JSON to stdout.
func (c *cli) printJSON(v any) error { return writeJSON(c.stdout, v) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
