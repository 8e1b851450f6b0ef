package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/testcontainers/testcontainers-go"
)

// natsModule is the nats-server module whose go.mod version the image is built from.
const natsModule = "github.com/nats-io/nats-server/v2"

// buildNATSImage builds (or finds, by its version tag) the FROM scratch nats-server
// image at the version go.mod pins, and returns its reference.
func buildNATSImage(ctx context.Context, dir string) (string, error) {
	root, err := repoRoot(ctx)
	if err != nil {
		return "", err
	}
	version, err := goOutput(ctx, root, nil, "list", "-m", "-f", "{{.Version}}", natsModule)
	if err != nil {
		return "", fmt.Errorf("nats-server version: %w", err)
	}
	ref := "studyd-it-nats:" + version
	if imageExists(ctx, ref) {
		return ref, nil // the tag names the version, so an existing image is this one
	}
	ctxDir := filepath.Join(dir, "nats-image")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		return "", fmt.Errorf("nats image context: %w", err)
	}
	env := []string{"CGO_ENABLED=0", "GOOS=linux"}
	if _, err := goOutput(ctx, root, env, "build", "-trimpath", "-o", filepath.Join(ctxDir, "nats-server"), natsModule); err != nil {
		return "", fmt.Errorf("build nats-server: %w", err)
	}
	dockerfile := "FROM scratch\nCOPY nats-server /nats-server\nEXPOSE 4222 6222 8222\nENTRYPOINT [\"/nats-server\"]\n"
	return buildImage(ctx, ctxDir, dockerfile, "studyd-it-nats", version)
}

// studyd is the studyd binary, built once per test binary on first use so that the
// tests that need no service run while cmd/studyd does not compile.
var studyd struct {
	once sync.Once
	bin  string
	hash string
	err  error
}

// studydBinary returns the path of a static studyd binary built from this checkout.
func studydBinary(t *testing.T) string {
	t.Helper()
	studyd.once.Do(func() {
		ctx := context.Background()
		root, err := repoRoot(ctx)
		if err != nil {
			studyd.err = err
			return
		}
		dir := filepath.Join(workDir, "studyd-image")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			studyd.err = err
			return
		}
		bin := filepath.Join(dir, "studyd")
		env := []string{"CGO_ENABLED=0", "GOOS=linux"}
		if _, err := goOutput(ctx, root, env, "build", "-o", bin, "./cmd/studyd"); err != nil {
			studyd.err = fmt.Errorf("build studyd: %w", err)
			return
		}
		h, err := fileHash(bin)
		if err != nil {
			studyd.err = err
			return
		}
		studyd.bin, studyd.hash = bin, h
	})
	if studyd.err != nil {
		t.Fatalf("studyd binary: %v", studyd.err)
	}
	return studyd.bin
}

// studydImage returns a FROM scratch image holding the studyd binary, tagged with the
// binary's hash so that each build of the service gets its own image.
func studydImage(t *testing.T) string {
	t.Helper()
	bin := studydBinary(t)
	ctx := context.Background()
	ref := "studyd-it-studyd:" + studyd.hash
	if imageExists(ctx, ref) {
		return ref
	}
	dockerfile := "FROM scratch\nCOPY studyd /studyd\nEXPOSE 8080\nENTRYPOINT [\"/studyd\"]\n"
	img, err := buildImage(ctx, filepath.Dir(bin), dockerfile, "studyd-it-studyd", studyd.hash)
	if err != nil {
		t.Fatalf("studyd image: %v", err)
	}
	return img
}

// buildImage writes dockerfile into ctxDir and builds it as repo:tag, kept after the
// containers that use it end.
func buildImage(ctx context.Context, ctxDir, dockerfile, repo, tag string) (string, error) {
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("write Dockerfile: %w", err)
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	ref, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        ctxDir,
		Repo:           repo,
		Tag:            tag,
		KeepImage:      true, // shared by every container of the run, and by the next run
		BuildLogWriter: io.Discard,
	}})
	if err != nil {
		return "", fmt.Errorf("build image %s:%s: %w", repo, tag, err)
	}
	return ref, nil
}

// imageExists reports whether the engine already holds ref.
func imageExists(ctx context.Context, ref string) bool {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false
	}
	defer cli.Close()
	_, err = cli.ImageInspect(ctx, ref)
	return err == nil
}

// repoRoot is the directory of the go.mod the tests belong to.
func repoRoot(ctx context.Context) (string, error) {
	gomod, err := goOutput(ctx, "", nil, "env", "GOMOD")
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("find go.mod from the test directory: %q %v", gomod, err)
	}
	return filepath.Dir(gomod), nil
}

// goOutput runs the go command in dir with extra environment and returns its
// trimmed standard output.
func goOutput(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// fileHash is the first 12 hex digits of the sha256 of a file.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
