package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
)

// errRejected is returned (after the outcome is printed) when studyd refused the
// command, so that studyctl exits non-zero.
var errRejected = errors.New("command rejected")

// publishCmd sends one command and prints its outcome.
func (c *cli) publishCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("publish", "send one command (flags, a JSON file or stdin) and print its outcome")
	var file string
	cmd.Arg("file", "a JSON command (- for stdin), as in docs/commands.md").StringVar(&file)
	var async bool
	cmd.Flag("async", "publish to JetStream (studyd.cmd.<client>) and wait for the outcome, instead of a studyd.submit request").UnNegatableBoolVar(&async)
	var cmdv domain.Command
	var typ, clientID, at, study, reason, runner string
	cmd.Flag("type", "command type: "+joinTypes()).PlaceHolder("TYPE").HintOptions(typeNames()...).StringVar(&typ)
	cmd.Flag("client", "the command's client id").PlaceHolder("CLIENT").StringVar(&clientID)
	cmd.Flag("id", "command id (default: a random one)").PlaceHolder("ID").StringVar(&cmdv.CommandID)
	cmd.Flag("at", "when the client observed it, RFC 3339 (default: now)").PlaceHolder("TIME").StringVar(&at)
	cmd.Flag("study", "study_removed, unenroll: <object>/<key>, e.g. addon_study/42 or preference_study/my-slug").PlaceHolder("STUDY").StringVar(&study)
	cmd.Flag("reason", "unenroll: the reason (default unknown)").PlaceHolder("REASON").StringVar(&reason)
	cmd.Flag("addon-id", "addon_uninstalled: the add-on id").PlaceHolder("ID").StringVar(&cmdv.AddonID)
	cmd.Flag("preference", "pref_changed: the preference name").PlaceHolder("NAME").StringVar(&cmdv.Preference)
	cmd.Flag("sideload", "addon_uninstalled, pref_changed: it happened while Firefox was closed").UnNegatableBoolVar(&cmdv.Sideload)
	cmd.Flag("studies-enabled", "opt_out: the new value of app.shield.optoutstudies.enabled").UnNegatableBoolVar(&cmdv.StudiesEnabled)
	cmd.Flag("runner-status", "recipe_run: the runner status (recipes need a JSON file)").PlaceHolder("STATUS").StringVar(&runner)
	return cmd.FullCommand(), func(ctx context.Context) error {
		cmd := cmdv
		flagged := typ != "" || clientID != "" || at != "" || study != "" || reason != "" || cmd.AddonID != "" ||
			cmd.Preference != "" || cmd.Sideload || cmd.StudiesEnabled || runner != ""
		switch {
		case file != "" && flagged:
			return errors.New("give a JSON command (a file or -) or the command flags, not both")
		case file != "":
			id := cmd.CommandID
			var err error
			if cmd, err = c.readCommand(file); err != nil {
				return err
			}
			if id != "" {
				cmd.CommandID = id
			}
		case typ == "":
			return errors.New("give --type and its flags, or a JSON command file (- for stdin)")
		default:
			cmd.Type, cmd.ClientID, cmd.Reason = domain.CommandType(typ), domain.ClientID(clientID), domain.Reason(reason)
			cmd.RunnerStatus = domain.UptakeStatus(runner)
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return fmt.Errorf("--at %q is not an RFC 3339 time: %w", at, err)
				}
				cmd.At = t
			}
			if study != "" {
				ref, err := audit.ParseStudy(study)
				if err != nil {
					return fmt.Errorf("--study: %w", err)
				}
				cmd.Study = &ref
			}
		}
		if cmd.CommandID == "" {
			cmd.CommandID = "studyctl-" + randomHex(16)
		}
		if cmd.At.IsZero() {
			cmd.At = time.Now().UTC()
		}
		if async {
			if err := cmd.ClientID.Validate(); err != nil {
				return fmt.Errorf("--async: %w (the client id is the subject studyd.cmd.<client>)", err)
			}
		}
		nc, err := c.connect("publish")
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		var out client.Outcome
		if async {
			out, err = client.PublishAndWait(ctx, nc, cmd)
		} else {
			out, err = client.Submit(ctx, nc, cmd)
		}
		if err != nil {
			return fmt.Errorf("publish %s: %w", cmd.CommandID, err)
		}
		if c.json {
			err = c.printJSON(out)
		} else {
			err = printOutcome(c.stdout, out)
		}
		if err != nil {
			return err
		}
		if out.Status == client.OutcomeRejected {
			return fmt.Errorf("%w: %s", errRejected, out.Error) // the code is in the outcome printed above
		}
		return nil
	}
}

// readCommand reads one JSON command from a file or, for "-", stdin. Unknown fields are
// errors, as studyd's intake would treat them.
func (c *cli) readCommand(name string) (domain.Command, error) {
	var r io.Reader = c.stdin
	fromStdin := name == stdinArg || name == "-"
	if fromStdin {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return domain.Command{}, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, domain.MaxCommandPayload+1))
	if err != nil {
		return domain.Command{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > domain.MaxCommandPayload {
		return domain.Command{}, fmt.Errorf("%s is larger than %d bytes", name, domain.MaxCommandPayload)
	}
	cmd, err := client.DecodeCommand(client.ContentTypeJSON, b)
	if err != nil {
		return domain.Command{}, fmt.Errorf("%s: %w", name, err)
	}
	return cmd, nil
}

// printOutcome prints an outcome for people.
func printOutcome(w io.Writer, o client.Outcome) error {
	pairs := [][2]string{{"command", o.CommandID}, {"client", string(o.ClientID)}, {"status", o.Status}}
	if o.Seq != 0 {
		pairs = append(pairs, [2]string{"seq", strconv.FormatUint(o.Seq, 10)})
	}
	if o.Code != "" || o.Error != "" {
		pairs = append(pairs, [2]string{"code", string(o.Code)}, [2]string{"error", o.Error})
	}
	for _, ev := range o.Events {
		pairs = append(pairs, [2]string{"event", ev.String()})
	}
	return writeFields(w, pairs...)
}

// randomHex returns n random bytes in hex, for command ids.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// typeNames lists the command types, for completion.
func typeNames() []string {
	names := make([]string, len(domain.CommandTypes))
	for i, t := range domain.CommandTypes {
		names[i] = string(t)
	}
	return names
}

// joinTypes lists the command types for the --type help.
func joinTypes() string {
	names := make([]string, len(domain.CommandTypes))
	for i, t := range domain.CommandTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
