package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
)

// errRejected is returned (after the outcome is printed) when studyd refused the
// command, so that studyctl exits non-zero.
var errRejected = errors.New("command rejected")

// runPublish sends one command and prints its outcome.
func runPublish(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	file := fs.String("file", "", "read the JSON command from this file (- for stdin)")
	async := fs.Bool("async", false, "publish to JetStream and wait for the outcome, instead of a studyd.submit request")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the outcome")
	var cmd domain.Command
	var typ, clientID, at, study, reason string
	fs.StringVar(&typ, "type", "", "command type: "+joinTypes())
	fs.StringVar(&clientID, "client", "", "client id")
	fs.StringVar(&cmd.CommandID, "id", "", "command id (default: a random one)")
	fs.StringVar(&at, "at", "", "when the client observed it, RFC 3339 (default: now)")
	fs.StringVar(&study, "study", "", "study_removed, unenroll: <object>/<key>, e.g. addon_study/42 or preference_study/my-slug")
	fs.StringVar(&reason, "reason", "", "unenroll: the reason (default unknown)")
	fs.StringVar(&cmd.AddonID, "addon-id", "", "addon_uninstalled: the add-on id")
	fs.StringVar(&cmd.Preference, "preference", "", "pref_changed: the preference name")
	fs.BoolVar(&cmd.Sideload, "sideload", false, "addon_uninstalled, pref_changed: it happened while Firefox was closed")
	fs.BoolVar(&cmd.StudiesEnabled, "studies-enabled", false, "opt_out: the new value of app.shield.optoutstudies.enabled")
	var runner string
	fs.StringVar(&runner, "runner-status", "", "recipe_run: the runner status (recipes need a JSON file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 1 && *file == "":
		*file = fs.Arg(0)
	case fs.NArg() > 0:
		return fmt.Errorf("publish: unexpected argument %q", fs.Arg(fs.NArg()-1))
	}
	flagged := typ != "" || clientID != "" || at != "" || study != "" || reason != "" || cmd.AddonID != "" ||
		cmd.Preference != "" || cmd.Sideload || cmd.StudiesEnabled || runner != ""
	switch {
	case *file != "" && flagged:
		return errors.New("publish: give a JSON command (--file or -) or the command flags, not both")
	case *file != "":
		id := cmd.CommandID
		var err error
		if cmd, err = readCommand(e, *file); err != nil {
			return err
		}
		if id != "" {
			cmd.CommandID = id
		}
	case typ == "":
		return errors.New("publish: give --type and its flags, or a JSON command with --file (- for stdin)")
	default:
		cmd.Type, cmd.ClientID, cmd.Reason = domain.CommandType(typ), domain.ClientID(clientID), domain.Reason(reason)
		cmd.RunnerStatus = domain.UptakeStatus(runner)
		if at != "" {
			t, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				return fmt.Errorf("publish: --at %q is not an RFC 3339 time: %w", at, err)
			}
			cmd.At = t
		}
		if study != "" {
			obj, key, ok := strings.Cut(study, "/")
			if !ok {
				return fmt.Errorf("publish: --study %q is not <object>/<key>", study)
			}
			cmd.Study = &domain.StudyRef{Object: domain.Object(obj), Key: key}
		}
	}
	if cmd.CommandID == "" {
		cmd.CommandID = "studyctl-" + randomHex(16)
	}
	if cmd.At.IsZero() {
		cmd.At = time.Now().UTC()
	}
	if *async {
		if err := cmd.ClientID.Validate(); err != nil {
			return fmt.Errorf("publish --async: %w (the client id is the subject studyd.cmd.<client>)", err)
		}
	}

	nc, err := e.connect()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var out client.Outcome
	if *async {
		out, err = client.PublishAndWait(ctx, nc, cmd)
	} else {
		out, err = client.Submit(ctx, nc, cmd)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", cmd.CommandID, err)
	}
	if e.json {
		err = e.printJSON(out)
	} else {
		err = printOutcome(e.stdout, out)
	}
	if err != nil {
		return err
	}
	if out.Status == client.OutcomeRejected {
		return fmt.Errorf("%w: %s: %s", errRejected, out.Code, out.Error)
	}
	return nil
}

// readCommand reads one JSON command from a file or, for "-", stdin. Unknown fields are
// errors, as studyd's intake would treat them.
func readCommand(e *env, name string) (domain.Command, error) {
	var r io.Reader = e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return domain.Command{}, fmt.Errorf("publish: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, domain.MaxCommandPayload+1))
	if err != nil {
		return domain.Command{}, fmt.Errorf("publish: read %s: %w", name, err)
	}
	if len(b) > domain.MaxCommandPayload {
		return domain.Command{}, fmt.Errorf("publish: %s is larger than %d bytes", name, domain.MaxCommandPayload)
	}
	cmd, err := client.DecodeCommand(client.ContentTypeJSON, b)
	if err != nil {
		return domain.Command{}, fmt.Errorf("publish: %s: %w", name, err)
	}
	return cmd, nil
}

// printOutcome prints an outcome for people.
func printOutcome(w io.Writer, o client.Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "command\t%s\n", o.CommandID)
	if o.ClientID != "" {
		fmt.Fprintf(tw, "client\t%s\n", o.ClientID)
	}
	fmt.Fprintf(tw, "status\t%s\n", o.Status)
	if o.Seq != 0 {
		fmt.Fprintf(tw, "seq\t%d\n", o.Seq)
	}
	if o.Code != "" {
		fmt.Fprintf(tw, "code\t%s\n", o.Code)
	}
	if o.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", o.Error)
	}
	for i, ev := range o.Events {
		label := ""
		if i == 0 {
			label = "events"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, ev)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write outcome: %w", err)
	}
	return nil
}

// randomHex returns n random bytes in hex, for command ids.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// joinTypes lists the command types for the --type help.
func joinTypes() string {
	names := make([]string, len(domain.CommandTypes))
	for i, t := range domain.CommandTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
