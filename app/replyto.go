package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/studyd/studyd/domain"
)

// ErrReplySubject: a command asked for its outcome on a subject studyd does not
// publish to. The command is refused (recorded with domain.RejectReplyTo) and no
// outcome is published anywhere. It is domain.ErrReplyTo, so IsRejection holds.
var ErrReplySubject = domain.ErrReplyTo

// ErrReplyPrefix: a configured reply prefix could reach subjects studyd must never
// publish outcomes to.
var ErrReplyPrefix = errors.New("app: invalid reply prefix")

// DefaultReplyPrefixes are the subjects outcomes may go to: NATS inboxes, which is
// what nats.go's NewInbox and the nats CLI use, and what the publisher role may
// subscribe to.
var DefaultReplyPrefixes = []string{"_INBOX."}

// maxReplySubject bounds a reply subject (an inbox is about 30 bytes).
const maxReplySubject = 256

// ReplyPolicy says where studyd may publish a command's outcome. studyd publishes
// with its own rights, which include writing the log and the views, so the subject a
// publisher names (header Studyd-Reply-To) must be one that can only be an inbox:
// otherwise a publisher could make studyd write studyd.evt.>, $KV.> or $JS.> for it.
// The zero value allows DefaultReplyPrefixes.
type ReplyPolicy struct {
	// Prefixes a reply subject must start with, each ending in "." (e.g. "_INBOX.",
	// or per-user inbox prefixes such as "_INBOX_alice." on a cluster).
	Prefixes []string
}

// Validate refuses prefixes that are not inbox-like: empty, not ending in ".", holding
// wildcards or blanks, or reaching studyd's own subjects or the server's ($JS, $KV,
// $SYS, …).
func (p ReplyPolicy) Validate() error {
	for _, pre := range p.Prefixes {
		switch {
		case pre == "" || !strings.HasSuffix(pre, "."):
			return fmt.Errorf("%w: %q must be one or more subject tokens ending in \".\" (e.g. \"_INBOX.\")", ErrReplyPrefix, pre)
		case strings.HasPrefix(pre, "$"):
			return fmt.Errorf("%w: %q is in the server's namespace ($JS, $KV, $SYS …)", ErrReplyPrefix, pre)
		case strings.HasPrefix(pre, "studyd."):
			return fmt.Errorf("%w: %q overlaps studyd's own subjects (commands, the log, queries)", ErrReplyPrefix, pre)
		}
		if err := checkTokens(pre[:len(pre)-1]); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrReplyPrefix, pre, err)
		}
	}
	return nil
}

func (p ReplyPolicy) prefixes() []string {
	if len(p.Prefixes) == 0 {
		return DefaultReplyPrefixes
	}
	return p.Prefixes
}

// Check returns nil if an outcome may be published to subject, else an error
// wrapping ErrReplySubject that names the header, the subject and what is accepted.
func (p ReplyPolicy) Check(subject string) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: header Studyd-Reply-To %q %s; studyd answers only on an inbox (a subject %s…), or use a request to studyd.submit",
			ErrReplySubject, clip(subject), why, strings.Join(p.prefixes(), "… or "))
	}
	if len(subject) > maxReplySubject {
		return refuse(fmt.Sprintf("is %d bytes (at most %d)", len(subject), maxReplySubject))
	}
	if err := checkTokens(subject); err != nil {
		return refuse(err.Error())
	}
	for _, pre := range p.prefixes() {
		if len(subject) > len(pre) && strings.HasPrefix(subject, pre) {
			return nil
		}
	}
	return refuse("is not an inbox")
}

// checkTokens accepts a publishable subject: non-empty dot-separated tokens without
// wildcards, blanks or control characters.
func checkTokens(subject string) error {
	if subject == "" {
		return errors.New("is empty")
	}
	for tok := range strings.SplitSeq(subject, ".") {
		if tok == "" {
			return errors.New("has an empty token")
		}
		if tok == "*" || tok == ">" {
			return errors.New("has a wildcard token")
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7f {
				return errors.New("has a blank or control character")
			}
		}
	}
	return nil
}

// clip shortens a subject for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
