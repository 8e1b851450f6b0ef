package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/embedded"
	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// TestRolesAgreeWithDeployConfig: deploy/nats-server.conf, the configuration
// documented for a cluster, grants each role exactly what the embedded default does.
func TestRolesAgreeWithDeployConfig(t *testing.T) {
	for _, v := range []string{"STUDYD_PASSWORD", "ADMIN_PASSWORD", "PUBLISHER_PASSWORD", "READER_PASSWORD"} {
		t.Setenv(v, "secret-"+v)
	}
	opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "..", "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatalf("deploy/nats-server.conf: %v", err)
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	norm := func(p *server.Permissions) map[string][]string {
		out := map[string][]string{}
		if p == nil {
			return out
		}
		for name, sp := range map[string]*server.SubjectPermission{"publish": p.Publish, "subscribe": p.Subscribe} {
			if sp == nil {
				continue
			}
			out[name+".allow"] = slices.Sorted(slices.Values(sp.Allow))
			if len(sp.Deny) > 0 {
				out[name+".deny"] = slices.Sorted(slices.Values(sp.Deny))
			}
		}
		if p.Response != nil {
			out["response"] = []string{"set"}
		}
		return out
	}
	for _, tt := range []struct {
		role string
		want *server.Permissions
	}{
		{embedded.RoleStudyd, nil},
		{embedded.RoleAdmin, nil},
		{embedded.RolePublisher, embedded.PublisherPermissions()},
		{embedded.RoleReader, embedded.ReaderPermissions()},
	} {
		u, ok := users[tt.role]
		if !ok {
			t.Errorf("deploy/nats-server.conf has no user %s", tt.role)
			continue
		}
		if diff := cmp.Diff(norm(tt.want), norm(u.Permissions)); diff != "" {
			t.Errorf("role %s: the file differs from the embedded roles (-embedded +file):\n%s", tt.role, diff)
		}
		if u.Account == nil || u.Account.Name != "STUDYD" {
			t.Errorf("role %s: account %v, want STUDYD (one account for all roles)", tt.role, u.Account)
		}
	}
	if len(users) != 4 {
		t.Errorf("deploy/nats-server.conf has %d users, want the 4 roles", len(users))
	}
}

// TestRolesReadEveryView: the publisher and reader may read every view bucket studyd
// keeps (a bucket added later must be added to the roles, or `nats kv get` and
// `studyctl verify` fail for them), and the log and checkpoints.
func TestRolesReadEveryView(t *testing.T) {
	streams := []string{"STUDYD_EVENTS", "STUDYD_CHECKPOINTS"}
	for _, b := range []string{client.StudiesBucket, client.UptakeBucket, client.StudyTimeBucket, client.RolloutsBucket, client.ProjectionBucket} {
		streams = append(streams, "KV_"+b)
	}
	for _, p := range []*server.Permissions{embedded.PublisherPermissions(), embedded.ReaderPermissions()} {
		for _, s := range streams {
			for _, want := range []string{"$JS.API.STREAM.INFO." + s, "$JS.API.DIRECT.GET." + s + ".>", "$JS.API.CONSUMER.CREATE." + s + ".>"} {
				if !slices.Contains(p.Publish.Allow, want) {
					t.Errorf("role lacks %s", want)
				}
			}
		}
	}
}

// TestRolesOnTheEmbeddedServer: without credentials a connection is the publisher —
// it may publish commands and read, and may not write the log or a view, nor delete
// or purge a stream; studyd's own connection may do everything; the admin nkey seed is
// written once with mode 0600 and is admin.
func TestRolesOnTheEmbeddedServer(t *testing.T) {
	dir := t.TempDir()
	roles := &embedded.Roles{AdminKeyFile: filepath.Join(dir, "admin.nk")}
	s, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "js"), Listen: "127.0.0.1:-1", Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	fi, err := os.Stat(roles.AdminKeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin key file: %v, %v; want mode 0600", fi, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	svc, err := roles.Connect(s, "studyd")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	sjs, _ := jetstream.New(svc)
	events, err := sjs.CreateStream(ctx, jetstream.StreamConfig{Name: "STUDYD_EVENTS", Subjects: []string{"studyd.evt.>", "studyd.rej.>"}, AllowDirect: true})
	if err != nil {
		t.Fatalf("studyd creates the log: %v", err)
	}
	if _, err := sjs.CreateStream(ctx, jetstream.StreamConfig{Name: "STUDYD_CMDS", Subjects: []string{"studyd.cmd.*"}}); err != nil {
		t.Fatal(err)
	}
	kv, err := sjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "studyd_uptake"})
	if err != nil {
		t.Fatal(err)
	}
	// The log's indexes: a key there names the record that answers a resent command.
	indexes := []jetstream.KeyValueConfig{eventlog.AppliedConfig(1), eventlog.RefusedConfig(1)}
	for _, cfg := range indexes {
		if _, err := sjs.CreateKeyValue(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sjs.Publish(ctx, "studyd.evt.c1", []byte("genuine")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "runner.RUNNER_SUCCESS", []byte("468")); err != nil {
		t.Fatal(err)
	}

	anon, err := nats.Connect(s.ClientURL(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	ajs, _ := jetstream.New(anon)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }

	// Allowed: what the README shows.
	if _, err := ajs.Publish(ctx, "studyd.cmd.c1", []byte("a command")); err != nil {
		t.Errorf("anonymous publish of a command: %v", err)
	}
	if _, err := ajs.Stream(ctx, "STUDYD_EVENTS"); err != nil {
		t.Errorf("anonymous stream info: %v", err)
	}
	akv, err := ajs.KeyValue(ctx, "studyd_uptake")
	if err != nil {
		t.Fatalf("anonymous open view: %v", err)
	}
	if e, err := akv.Get(ctx, "runner.RUNNER_SUCCESS"); err != nil || string(e.Value()) != "468" {
		t.Errorf("anonymous kv get: %v, %v", e, err)
	}
	w, err := akv.WatchAll(ctx)
	if err != nil {
		t.Errorf("anonymous kv watch: %v", err)
	} else {
		if e := <-w.Updates(); e == nil || string(e.Value()) != "468" {
			t.Errorf("anonymous kv watch: first update %v, want the value", e)
		}
		_ = w.Stop()
	}

	// Refused.
	for _, tt := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"publish a commit", func(ctx context.Context) error {
			_, err := ajs.Publish(ctx, "studyd.evt.c1", []byte("forged"))
			return err
		}},
		{"publish a rejection", func(ctx context.Context) error {
			_, err := ajs.Publish(ctx, "studyd.rej.c1", []byte("forged"))
			return err
		}},
		{"write a view", func(ctx context.Context) error {
			_, err := akv.Put(ctx, "runner.RUNNER_SUCCESS", []byte("0"))
			return err
		}},
		{"delete the log", func(ctx context.Context) error { return ajs.DeleteStream(ctx, "STUDYD_EVENTS") }},
		{"purge the log", func(ctx context.Context) error {
			_, err := anon.RequestWithContext(ctx, "$JS.API.STREAM.PURGE.STUDYD_EVENTS", nil)
			return err
		}},
		{"edit the log", func(ctx context.Context) error {
			_, err := ajs.UpdateStream(ctx, jetstream.StreamConfig{Name: "STUDYD_EVENTS", Subjects: []string{"studyd.evt.>"}})
			return err
		}},
		{"delete a view", func(ctx context.Context) error { return ajs.DeleteKeyValue(ctx, "studyd_uptake") }},
		{"write the applied-id index", func(ctx context.Context) error {
			_, err := ajs.Publish(ctx, "$KV."+eventlog.AppliedBucket+"."+eventlog.AppliedKey("c1", "x"), []byte("1"))
			return err
		}},
		{"write the refusal index", func(ctx context.Context) error {
			_, err := ajs.Publish(ctx, "$KV."+eventlog.RefusedBucket+"."+eventlog.AppliedKey("c1", "x"), []byte("1"))
			return err
		}},
		{"consume the commands", func(ctx context.Context) error {
			_, err := ajs.CreateOrUpdateConsumer(ctx, "STUDYD_CMDS", jetstream.ConsumerConfig{Durable: "thief"})
			return err
		}},
	} {
		octx, cancel := short()
		if err := tt.do(octx); err == nil {
			t.Errorf("anonymous %s: got nil error, want a refusal", tt.name)
		}
		cancel()
	}
	info, err := events.Info(ctx)
	if err != nil || info.State.Msgs != 1 || len(info.Config.Subjects) != 2 {
		t.Errorf("log after the attempts: %+v, %v; want studyd's one message, config unchanged", info, err)
	}
	if e, err := kv.Get(ctx, "runner.RUNNER_SUCCESS"); err != nil || string(e.Value()) != "468" {
		t.Errorf("view after the attempts: %v, %v; want 468", e, err)
	}
	for _, cfg := range indexes {
		idx, err := sjs.KeyValue(ctx, cfg.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := idx.Get(ctx, eventlog.AppliedKey("c1", "x")); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s after the attempts: %v, %v; want no key", cfg.Bucket, e, err)
		}
	}

	// The admin nkey may do what the publisher may not.
	opt, err := nats.NkeyOptionFromSeed(roles.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := nats.Connect(s.ClientURL(), opt)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer admin.Close()
	adm, _ := jetstream.New(admin)
	if _, err := adm.Publish(ctx, "studyd.evt.c1", []byte("planted by an admin")); err != nil {
		t.Errorf("admin publish on the log: %v", err)
	}
}

// TestRolesRefuseAnExposedAdminKey: a seed file others may read is refused, and an
// existing one is kept across restarts.
func TestRolesRefuseAnExposedAdminKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "admin.nk")
	start := func() error {
		s, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "js"), Roles: &embedded.Roles{AdminKeyFile: key}})
		if err == nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
		return err
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if again, _ := os.ReadFile(key); string(again) != string(first) {
		t.Errorf("the admin key changed across a restart")
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := start(); !errors.Is(err, embedded.ErrCredential) {
		t.Errorf("start with a world-readable admin key: got %v, want ErrCredential", err)
	}
}
