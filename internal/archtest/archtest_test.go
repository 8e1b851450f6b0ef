package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/studyd/studyd"

// pure are the packages that do no I/O: the recipe's data, the domain, its rules and
// folds, the store contract, the handler, the audit logic and the fleet model.
var pure = []string{"recipe", "domain", "fsm", "projections", "audit", "srm", "eventstore", "app", "simulate", "wire"}

// leaves are pure packages below domain and what each may link besides the standard
// library (path prefixes): recipe knows nothing of studyd, only JSON and msgpack.
var leaves = map[string][]string{
	"recipe": {"github.com/vmihailenco/msgpack/", "github.com/vmihailenco/tagparser/"},
}

// infrastructure is what a pure package must not link, directly or not (path prefixes).
var infrastructure = []string{
	"github.com/nats-io/",
	"github.com/prometheus/",
	"github.com/testcontainers/",
	"github.com/moby/",
	"net/http",
	"os/exec",
	"database/sql",
	module + "/adapters/",
	module + "/cmd/",
	module + "/internal/",
}

// pureDirect is what a pure package must not import itself (the packages are linked by
// crypto/x509 and net/url, which are pure enough, so only a direct import is refused).
var pureDirect = []string{"net", "os/signal", "syscall"}

// serverOnly is what cmd/studyctl must not link: the server's dependencies and parts.
var serverOnly = []string{
	"github.com/nats-io/nats-server/",
	"github.com/prometheus/",
	module + "/app",
	module + "/adapters/nats/embedded",
	module + "/adapters/nats/intake",
	module + "/adapters/nats/views",
	module + "/adapters/nats/query",
	module + "/adapters/nats/natstest",
}

// pkg is the part of `go list -json` the rules read.
type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// matches reports whether path is prefix, or under it when prefix ends in "/" (a
// prefix without a trailing slash also matches its subpackages).
func matches(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func firstMatch(paths, prefixes []string) (string, bool) {
	for _, p := range paths {
		for _, pre := range prefixes {
			if matches(p, pre) {
				return p, true
			}
		}
	}
	return "", false
}

// check returns every broken rule among the module's packages pkgs.
func check(pkgs []pkg) []string {
	var faults []string
	byPath := map[string]pkg{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	for _, name := range pure {
		p, ok := byPath[module+"/"+name]
		if !ok {
			faults = append(faults, fmt.Sprintf("pure package %s not found", name))
			continue
		}
		if dep, bad := firstMatch(p.Deps, infrastructure); bad {
			faults = append(faults, fmt.Sprintf("pure package %s links infrastructure: %s", name, dep))
		}
		for _, imp := range p.Imports {
			if slices.Contains(pureDirect, imp) {
				faults = append(faults, fmt.Sprintf("pure package %s imports %s", name, imp))
			}
		}
	}
	for name, allowed := range leaves {
		for _, dep := range byPath[module+"/"+name].Deps {
			if standard := !strings.Contains(strings.Split(dep, "/")[0], "."); !standard && !slices.ContainsFunc(allowed,
				func(a string) bool { return matches(dep, a) }) {
				faults = append(faults, fmt.Sprintf("package %s links %s (only the standard library and %v)", name, dep, allowed))
			}
		}
	}
	if p, ok := byPath[module+"/cmd/studyctl"]; !ok {
		faults = append(faults, "cmd/studyctl not found")
	} else if dep, bad := firstMatch(p.Deps, serverOnly); bad {
		faults = append(faults, fmt.Sprintf("cmd/studyctl links the server: %s", dep))
	}
	for _, p := range pkgs {
		if p.Name == "main" {
			continue
		}
		if want := path.Base(p.ImportPath); p.Name != want {
			faults = append(faults, fmt.Sprintf("package %s is named %s, not after its folder (%s)", p.ImportPath, p.Name, want))
		}
	}
	return faults
}

// list runs `go list -deps -json ./...` at the module root and returns the module's
// own packages.
func list(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		if p.Module != nil && p.Module.Path == module {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < len(pure) {
		t.Fatalf("go list found only %d packages of %s", len(pkgs), module)
	}
	return pkgs
}

// TestArchitecture checks the import rules on the packages as they are.
func TestArchitecture(t *testing.T) {
	for _, f := range check(list(t)) {
		t.Error(f)
	}
}

// TestRulesCatchViolations feeds the rules a module that breaks each of them, so that
// TestArchitecture passing means something.
func TestRulesCatchViolations(t *testing.T) {
	ok := func(name string, deps ...string) pkg {
		return pkg{ImportPath: module + "/" + name, Name: path.Base(name), Deps: deps}
	}
	clean := []pkg{ok("cmd/studyctl", module+"/adapters/nats/client", "github.com/nats-io/nats.go")}
	clean[0].Name = "main"
	for _, n := range pure {
		if _, leaf := leaves[n]; leaf {
			clean = append(clean, ok(n, "github.com/vmihailenco/msgpack/v5", "encoding/json", "net"))
			continue
		}
		clean = append(clean, ok(n, module+"/domain", "github.com/vmihailenco/msgpack/v5", "net"))
	}
	if f := check(clean); len(f) != 0 {
		t.Fatalf("a clean module has faults: %v", f)
	}
	for _, tc := range []struct {
		name string
		edit func(p *pkg)
		want string
	}{
		{"app links nats.go", func(p *pkg) {
			if p.ImportPath == module+"/app" {
				p.Deps = append(p.Deps, "github.com/nats-io/nats.go")
			}
		}, "pure package app links infrastructure: github.com/nats-io/nats.go"},
		{"audit links net/http", func(p *pkg) {
			if p.ImportPath == module+"/audit" {
				p.Deps = append(p.Deps, "net/http")
			}
		}, "pure package audit links infrastructure: net/http"},
		{"domain imports net", func(p *pkg) {
			if p.ImportPath == module+"/domain" {
				p.Imports = append(p.Imports, "net")
			}
		}, "pure package domain imports net"},
		{"projections links an adapter", func(p *pkg) {
			if p.ImportPath == module+"/projections" {
				p.Deps = append(p.Deps, module+"/adapters/nats/views")
			}
		}, "pure package projections links infrastructure: " + module + "/adapters/nats/views"},
		{"recipe links domain", func(p *pkg) {
			if p.ImportPath == module+"/recipe" {
				p.Deps = append(p.Deps, module+"/domain")
			}
		}, "package recipe links " + module + "/domain (only the standard library and [github.com/vmihailenco/msgpack/ github.com/vmihailenco/tagparser/])"},
		{"studyctl links nats-server", func(p *pkg) {
			if p.ImportPath == module+"/cmd/studyctl" {
				p.Deps = append(p.Deps, "github.com/nats-io/nats-server/v2/server")
			}
		}, "cmd/studyctl links the server: github.com/nats-io/nats-server/v2/server"},
		{"studyctl links app", func(p *pkg) {
			if p.ImportPath == module+"/cmd/studyctl" {
				p.Deps = append(p.Deps, module+"/app")
			}
		}, "cmd/studyctl links the server: " + module + "/app"},
		{"studyctl links prometheus", func(p *pkg) {
			if p.ImportPath == module+"/cmd/studyctl" {
				p.Deps = append(p.Deps, "github.com/prometheus/client_golang/prometheus")
			}
		}, "cmd/studyctl links the server: github.com/prometheus/client_golang/prometheus"},
		{"a package named unlike its folder", func(p *pkg) {
			if p.ImportPath == module+"/fsm" {
				p.Name = "natsadapter"
			}
		}, "package " + module + "/fsm is named natsadapter, not after its folder (fsm)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs := make([]pkg, len(clean))
			for i, p := range clean {
				p.Deps, p.Imports = slices.Clone(p.Deps), slices.Clone(p.Imports)
				tc.edit(&p)
				pkgs[i] = p
			}
			f := check(pkgs)
			if !slices.Contains(f, tc.want) {
				t.Errorf("faults = %q, want %q among them", f, tc.want)
			}
		})
	}
}
