package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/srm"
)

// runEnv runs studyctl with args and an environment of env only.
func runEnv(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestHelpAndVersionExitZero(t *testing.T) {
	t.Parallel()
	tests := [][]string{{"-h"}, {"--help"}, {"help"}, {}, {"--version"}}
	for _, name := range []string{"publish", "simulate", "studies", "study", "uptake", "client", "watch", "rebuild",
		"audit", "verify", "asof", "explain", "health", "checkpoint", "keygen", "completion"} {
		tests = append(tests, []string{name, "-h"}, []string{name, "--help"}, []string{"help", name})
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, stderr, err := runCLI(t, "", args...)
			if err != nil {
				t.Fatalf("studyctl %v: error %v (stderr %q), want none", args, err, stderr)
			}
			want := "usage: studyctl"
			if len(args) > 0 && args[0] == "--version" {
				want = version()
			} else if len(args) == 2 {
				want = "usage: studyctl " + args[len(args)-1]
				if args[0] != "help" {
					want = "usage: studyctl " + args[0]
				}
			}
			if !strings.Contains(out, want) {
				t.Errorf("studyctl %v printed %q, want it to contain %q", args, out, want)
			}
		})
	}
}

// TestHelpListsOnlyWhatWorks: health takes its study as an argument, so its help has
// no --study (which used to be listed, and failed).
func TestHelpListsOnlyWhatWorks(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "", "health", "--help")
	if err != nil || strings.Contains(out, "--study") || !strings.Contains(out, "<study>") {
		t.Errorf("health --help: %v\n%s\nwant <study> and no --study", err, out)
	}
}

func TestUsageErrorsFail(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"bogus"}, {"studies", "--bogus"}, {"study"}, {"client"}, {"explain", "c1"},
		{"health", "preference_study"}, {"health", "--study", "preference_study/x"}} {
		if _, _, err := runCLI(t, "", args...); err == nil {
			t.Errorf("studyctl %v: no error, want a usage error", args)
		}
	}
}

// TestConnectionFlagsAnywhere: the nats CLI takes its connection flags before or after
// the command, and -s for --server.
func TestConnectionFlagsAnywhere(t *testing.T) {
	t.Parallel()
	url, seq := startViews(t)
	for _, args := range [][]string{
		{"--server", url, "studies", "--min-seq", itoa(seq)},
		{"studies", "--server", url, "--min-seq", itoa(seq)},
		{"-s", url, "studies", "--min-seq", itoa(seq)},
		{"studies", "-s", url, "--json", "--min-seq", itoa(seq)},
		{"--timeout", "3s", "-s", url, "study", "preference_study/pref-x", "--min-seq", itoa(seq)},
	} {
		if out, stderr, err := runCLI(t, "", args...); err != nil {
			t.Errorf("studyctl %v: %v (stderr %q)", args, err, stderr)
		} else if !strings.Contains(out, "pref-x") {
			t.Errorf("studyctl %v printed %q, want the study pref-x", args, out)
		}
	}
	// NATS_URL is the default server.
	if _, stderr, err := runEnv(t, map[string]string{"NATS_URL": url}, "studies"); err != nil {
		t.Errorf("NATS_URL=%s studyctl studies: %v (stderr %q)", url, err, stderr)
	}
}

// startAuthServer runs a JetStream server with the authentication auth sets up, and
// an empty STUDYD_EVENTS stream created through a connection with opt.
func startAuthServer(t *testing.T, auth func(*server.Options), opt nats.Option) string {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, DisableJetStreamBanner: true}
	auth(opts)
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventlog.EnsureEventsStream(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL()
}

// startTokenServer runs a JetStream server that demands a token.
func startTokenServer(t *testing.T, token string) string {
	t.Helper()
	return startAuthServer(t, func(o *server.Options) { o.Authorization = token }, nats.Token(token))
}

func TestUserPasswordAndNKey(t *testing.T) {
	t.Parallel()
	url := startAuthServer(t, func(o *server.Options) { o.Username, o.Password = "svc", "pw" }, nats.UserInfo("svc", "pw"))
	if _, stderr, err := runEnv(t, nil, "audit", "-s", url, "--user", "svc", "--password", "pw"); err != nil {
		t.Errorf("audit --user --password: %v (stderr %q)", err, stderr)
	}
	if _, stderr, err := runEnv(t, map[string]string{"NATS_USER": "svc", "NATS_PASSWORD": "pw"}, "audit", "-s", url); err != nil {
		t.Errorf("NATS_USER/NATS_PASSWORD audit: %v (stderr %q)", err, stderr)
	}
	if _, _, err := runEnv(t, nil, "audit", "-s", url, "--user", "svc", "--password", "wrong"); err == nil {
		t.Errorf("audit with a wrong password: no error")
	}

	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	url = startAuthServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} }, opt)
	if _, stderr, err := runEnv(t, nil, "audit", "-s", url, "--nkey", seedFile); err != nil {
		t.Errorf("audit --nkey: %v (stderr %q)", err, stderr)
	}
	if _, _, err := runEnv(t, nil, "audit", "-s", url); err == nil {
		t.Errorf("audit without the nkey: no error")
	}
}

func TestTokenAndContext(t *testing.T) {
	t.Parallel()
	url := startTokenServer(t, "s3cret")
	if _, _, err := runEnv(t, nil, "audit", "-s", url); err == nil || !strings.Contains(err.Error(), "uthorization") {
		t.Errorf("audit without a token: error %v, want an authorization error", err)
	}
	if _, stderr, err := runEnv(t, nil, "audit", "-s", url, "--token", "s3cret"); err != nil {
		t.Errorf("audit --token: %v (stderr %q)", err, stderr)
	}
	if _, stderr, err := runEnv(t, map[string]string{"NATS_URL": url, "NATS_TOKEN": "s3cret"}, "audit"); err != nil {
		t.Errorf("NATS_TOKEN=… audit: %v (stderr %q)", err, stderr)
	}

	// A nats context, named or selected, gives the server and the token; a flag wins.
	cfg := t.TempDir()
	dir := filepath.Join(cfg, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"url": url, "token": "s3cret", "description": "test"})
	if err := os.WriteFile(filepath.Join(dir, "studyd.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_CONFIG_HOME": cfg}
	if _, stderr, err := runEnv(t, env, "audit", "--context", "studyd"); err != nil {
		t.Errorf("audit --context studyd: %v (stderr %q)", err, stderr)
	}
	if _, _, err := runEnv(t, env, "audit"); err == nil {
		t.Errorf("audit with no context selected reached %s, want a failure at the default URL", url)
	}
	if _, _, err := runEnv(t, env, "audit", "--context", "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("audit --context nope: error %v, want one naming the context", err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "nats", "context.txt"), []byte("studyd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runEnv(t, env, "audit"); err != nil {
		t.Errorf("audit with the selected context: %v (stderr %q)", err, stderr)
	}
	if _, _, err := runEnv(t, env, "audit", "--token", "wrong"); err == nil {
		t.Errorf("audit --token wrong with a context: no error, want the flag to win over the context")
	}
	env["NATS_CONTEXT"] = "nope"
	if _, _, err := runEnv(t, env, "audit"); err == nil {
		t.Errorf("NATS_CONTEXT=nope: no error, want the named context to be read")
	}
}

func TestBadEnvironmentIsFatalAndNamed(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, value string }{
		{"STUDYCTL_CLIENTS", "2k"},
		{"STUDYCTL_RATE", "fast"},
		{"NATS_TIMEOUT", "soon"},
		{"STUDYCTL_FORMAT", "xml"},
	}
	for _, tt := range tests {
		_, _, err := runEnv(t, map[string]string{tt.env: tt.value}, "simulate", "--dry-run", "--clients", "3", "--days", "1")
		if tt.env == "STUDYCTL_CLIENTS" {
			// The flag is given, yet a bad environment value is still an error.
			_, _, err = runEnv(t, map[string]string{tt.env: tt.value}, "simulate", "--dry-run", "--days", "1")
		}
		if err == nil || !strings.Contains(err.Error(), tt.env) || !strings.Contains(err.Error(), tt.value) {
			t.Errorf("%s=%s: error %v, want one naming the variable and its value", tt.env, tt.value, err)
		}
	}
	// A bad value of another command's variable is not this command's concern, and
	// --help always works.
	if _, _, err := runEnv(t, map[string]string{"STUDYCTL_CLIENTS": "2k"}, "keygen", "--help"); err != nil {
		t.Errorf("STUDYCTL_CLIENTS=2k studyctl keygen --help: %v, want the help", err)
	}
	if _, _, err := runEnv(t, map[string]string{"STUDYCTL_CLIENTS": "2k", "NATS_TIMEOUT": "soon"}, "--help"); err != nil {
		t.Errorf("NATS_TIMEOUT=soon studyctl --help: %v, want the help", err)
	}
	if _, _, err := runEnv(t, map[string]string{"STUDYCTL_CLIENTS": "2k"}, "completion"); err != nil {
		t.Errorf("STUDYCTL_CLIENTS=2k studyctl completion: %v, want the script (the variable is simulate's)", err)
	}
	if _, _, err := runEnv(t, map[string]string{"NATS_TIMEOUT": "soon"}, "completion"); err == nil || !strings.Contains(err.Error(), "NATS_TIMEOUT") {
		t.Errorf("NATS_TIMEOUT=soon studyctl completion: %v, want an error naming the global variable", err)
	}
	out, _, err := runEnv(t, map[string]string{"STUDYCTL_CLIENTS": "3", "STUDYCTL_DAYS": "1"}, "simulate", "--dry-run", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Clients, Days int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Clients != 3 || rep.Days != 1 {
		t.Errorf("STUDYCTL_CLIENTS=3 STUDYCTL_DAYS=1: report %+v (%v), want 3 clients over 1 day", rep, err)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "complete -F", "zsh": "compdef"} {
		out, _, err := runCLI(t, "", "completion", shell)
		if err != nil || !strings.Contains(out, want) || !strings.Contains(out, "studyctl") {
			t.Errorf("completion %s: %v, output lacks %q:\n%s", shell, err, want, out)
		}
	}
}

// TestTablesAreTidy: no trailing spaces, "-" for an empty value, the same layout in
// every view command.
func TestTablesAreTidy(t *testing.T) {
	t.Parallel()
	url, seq := startViews(t)
	for _, args := range [][]string{
		{"studies", "--min-seq", itoa(seq)},
		{"study", "preference_study/pref-x", "--min-seq", itoa(seq)},
		{"study", "preference_study", "pref-x"},
		{"uptake", "--min-seq", itoa(seq)},
		{"client", "alice"},
	} {
		out, stderr, err := runCLI(t, "", append(args, "-s", url)...)
		if err != nil {
			t.Fatalf("studyctl %v: %v (stderr %q)", args, err, stderr)
		}
		for i, line := range strings.Split(out, "\n") {
			if strings.TrimRight(line, " \t") != line {
				t.Errorf("studyctl %v line %d has trailing spaces: %q", args, i+1, line)
			}
		}
		if args[0] == "client" && !strings.Contains(out, "treatment  2018-07-14T12:00:00Z  -") {
			t.Errorf("client table lacks '-' for the empty end time:\n%s", out)
		}
	}
}

// TestErrorsSayEachThingOnce: an error names its subject once, not once per layer
// ("client nobody: client nobody has no commits").
func TestErrorsSayEachThingOnce(t *testing.T) {
	t.Parallel()
	url, _ := startViews(t)
	for _, tt := range []struct {
		args []string
		word string
	}{
		{[]string{"client", "nobody"}, "nobody"},
		{[]string{"study", "preference_study/nope"}, "preference_study/nope"},
	} {
		_, _, err := runCLI(t, "", append(tt.args, "-s", url)...)
		if err == nil {
			t.Fatalf("studyctl %v: no error, want one", tt.args)
		}
		if n := strings.Count(err.Error(), tt.word); n != 1 {
			t.Errorf("studyctl %v: error %q names %q %d times, want once", tt.args, err, tt.word, n)
		}
	}
	_, _, err := runCLI(t, `{"type":"opt_out","colour":1}`, "publish", "-", "-s", url)
	if err == nil || strings.Count(err.Error(), "json:") != 1 || !strings.Contains(err.Error(), "stdin") {
		t.Errorf("publish - of a misspelt field: error %v, want one naming stdin and json once", err)
	}
}

// TestHealthTableIsStable: the same health prints the same table, reasons sorted,
// every line without trailing spaces.
func TestHealthTableIsStable(t *testing.T) {
	t.Parallel()
	h := srm.StudyHealth{Study: domain.StudyRef{Object: domain.AddonStudy, Key: "42"},
		Branches:     []srm.BranchHealth{{Branch: "a", Weight: 1, Enrolled: 3}, {Branch: "b", Weight: 1, Enrolled: 4}},
		Unenrolled:   map[string]uint64{"unknown": 1, "uninstalled": 2, "general-opt-out": 3, "individual-opt-out": 4, "recipe-not-seen": 5},
		EnrollFailed: map[string]uint64{"z-error": 1, "a-error": 2, "m-error": 3}}
	var first string
	for i := range 20 {
		var b bytes.Buffer
		if err := printHealth(&b, h); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b.String()
		} else if b.String() != first {
			t.Fatalf("health table changed between prints:\n%s\n---\n%s", first, b.String())
		}
	}
	var reasons []string
	for _, l := range strings.Split(first, "\n") {
		if strings.TrimRight(l, " ") != l {
			t.Errorf("line %q has trailing spaces", l)
		}
		if strings.HasPrefix(l, "unenrolled") {
			reasons = append(reasons, strings.Fields(l)[1])
		}
	}
	if !slices.IsSorted(reasons) || len(reasons) != 5 {
		t.Errorf("unenroll reasons %v, want all five sorted", reasons)
	}
}

// TestSimulateVersions: --versions mixed simulates a fleet of several Firefox versions,
// which decides later events a seed fleet never has; an unknown mix is refused.
func TestSimulateVersions(t *testing.T) {
	t.Parallel()
	tally := func(args ...string) map[string]int {
		t.Helper()
		out, _, err := runEnv(t, nil, append([]string{"simulate", "--dry-run", "--json", "--clients", "80", "--days", "6"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Expected struct {
				Events map[string]int `json:"events"`
			} `json:"expected"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		return rep.Expected.Events
	}
	if seed := tally(); seed["updated"]+seed["graduated"]+seed["exp_pref_changed"] != 0 {
		t.Errorf("seed fleet decided later events: %v", seed)
	}
	if mixed := tally("--versions", "mixed"); mixed["exp_pref_changed"]+mixed["graduated"]+mixed["updated"]+mixed["unenroll_failed"] == 0 {
		t.Errorf("mixed fleet decided no later events: %v", mixed)
	}
	if _, _, err := runEnv(t, nil, "simulate", "--dry-run", "--versions", "nightly"); err == nil {
		t.Errorf("--versions nightly: got no error, want one")
	}
}
