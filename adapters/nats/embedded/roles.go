package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Role names, as in deploy/nats-server.conf.
const (
	RoleStudyd    = "studyd"
	RolePublisher = "publisher"
	RoleReader    = "reader"
	RoleAdmin     = "admin"
)

// ErrCredential: a credential file of the embedded server is unusable (unreadable,
// not an nkey seed, or readable by others).
var ErrCredential = errors.New("embedded: bad credential file")

// readStreams are the streams the publisher and reader roles may read: the log, the
// command queue's info, the checkpoints and the views.
var readStreams = []string{"STUDYD_EVENTS", "STUDYD_CHECKPOINTS", "KV_studyd_studies", "KV_studyd_uptake", "KV_studyd_study_time", "KV_studyd_rollouts", "KV_studyd_projection"}

// readSubjects are the subjects the publisher and reader roles may publish to in order
// to read: queries, endpoint discovery, stream info, gets, and ordered consumers of
// their own (created, pulled, deleted) on the read streams. Consumer names are never
// listed to them (no CONSUMER.NAMES/LIST/INFO), and studyd's consumers on these streams
// have random names, so they cannot address one of studyd's; on STUDYD_CMDS, whose
// partition consumers have known names, they have no consumer API at all. Nothing
// here writes: no $KV.>, no studyd.evt.>, no STREAM.DELETE/PURGE/UPDATE, no $JS.ACK.>.
func readSubjects() []string {
	subs := []string{
		"studyd.query.>",
		"$SRV.>",
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO.STUDYD_CMDS",
	}
	for _, s := range readStreams {
		subs = append(subs,
			"$JS.API.STREAM.INFO."+s,
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
			"$JS.API.CONSUMER.DELETE."+s+".*",
		)
	}
	return append(subs, "$JS.FC.>")
}

// PublisherPermissions is the publisher role: commands (studyd.cmd.<client>), submit
// and queries, and the reads of readSubjects; replies only on _INBOX.>.
func PublisherPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string{"studyd.cmd.*", "studyd.submit"}, readSubjects()...)},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// ReaderPermissions is the reader role: the publisher's reads and queries, no commands.
func ReaderPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: readSubjects()},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// Roles turns on studyd's permission layout on the embedded server: studyd's own
// in-process connection has every right (user studyd, with a password made at each
// start and never written down), a connection without credentials is the publisher
// (nats-server's no_auth_user), and the admin role is an nkey whose seed is kept in
// AdminKeyFile (created with mode 0600 on first start).
type Roles struct {
	// AdminKeyFile holds the admin role's nkey seed (`nats --nkey FILE`).
	AdminKeyFile string

	studyd string // studyd's password, set by Start
}

// apply adds the roles to opts.
func (r *Roles) apply(opts *server.Options) error {
	admin, err := loadOrCreateSeed(r.AdminKeyFile)
	if err != nil {
		return err
	}
	r.studyd = randomSecret()
	opts.Users = []*server.User{
		{Username: RoleStudyd, Password: r.studyd},
		{Username: RolePublisher, Password: randomSecret(), Permissions: PublisherPermissions()},
	}
	opts.Nkeys = []*server.NkeyUser{{Nkey: admin}}
	opts.NoAuthUser = RolePublisher
	return nil
}

// Connect connects to s, started with these roles, in-process as studyd.
func (r *Roles) Connect(s *server.Server, name string) (*nats.Conn, error) {
	if r.studyd == "" {
		return nil, errors.New("embedded: roles not applied: start the server with them first")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name(name), nats.MaxReconnects(-1),
		nats.UserInfo(RoleStudyd, r.studyd))
	if err != nil {
		return nil, fmt.Errorf("nats: connect in-process: %w", err)
	}
	return nc, nil
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// loadOrCreateSeed returns the public key of the user nkey seed in path, writing a new
// seed there (mode 0600, never over an existing file) if there is none. A seed file
// that others may read is refused: whoever reads it is admin.
func loadOrCreateSeed(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: no admin key file given", ErrCredential)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("create admin nkey: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return "", fmt.Errorf("create admin nkey: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("write admin nkey: %w", err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", fmt.Errorf("write admin nkey %s: %w", path, werr)
		}
		return kp.PublicKey()
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCredential, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %v; whoever can read it is admin: chmod 600 %s", ErrCredential, path, fi.Mode().Perm(), path)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrCredential, path, err)
	}
	if seed, _ := kp.Seed(); len(seed) < 2 || seed[1] != 'U' {
		return "", fmt.Errorf("%w: %s is not a user nkey seed (SU…)", ErrCredential, path)
	}
	return kp.PublicKey()
}
