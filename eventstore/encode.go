package eventstore

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/recipe"
)

// appendCommit writes c exactly as msgpack v5's reflective encoder would with compact
// integers (struct fields in order as map entries, omitempty fields left out), without
// reflection: an append costs one encode, and the reflective path spent most of its
// time boxing fields to test them for emptiness. TestFastEncoderMatchesReflection and
// the golden file hold the two to the same bytes.
func appendCommit(b []byte, c *Commit) []byte {
	n := 12
	if c.CorrelationID != "" {
		n++
	}
	if c.CommandDigest != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendInt(appendStr(b, "schema"), int64(c.Schema))
	b = appendStr(appendStr(b, "commit_id"), c.CommitID)
	b = appendStr(appendStr(b, "command_id"), c.CommandID)
	b = appendStr(appendStr(b, "command_type"), string(c.CommandType))
	b = appendUint(appendStr(b, "command_seq"), c.CommandSeq)
	if c.CorrelationID != "" {
		b = appendStr(appendStr(b, "correlation_id"), c.CorrelationID)
	}
	if c.CommandDigest != "" {
		b = appendStr(appendStr(b, "command_digest"), c.CommandDigest)
	}
	b = appendStr(appendStr(b, "client"), string(c.Client))
	b = appendTime(appendStr(b, "at"), c.At)
	b = appendArrayLen(appendStr(b, "events"), len(c.Events))
	for i := range c.Events {
		b = appendEvent(b, &c.Events[i])
	}
	b = appendState(appendStr(b, "state"), &c.State)
	b = appendArrayLen(appendStr(b, "recent"), len(c.Recent))
	for _, a := range c.Recent {
		b = appendMapLen(b, 3)
		b = appendStr(appendStr(b, "command_id"), a.CommandID)
		b = appendUint(appendStr(b, "command_seq"), a.CommandSeq)
		b = appendUint(appendStr(b, "position"), a.Position)
	}
	b = appendStr(appendStr(b, "fsm_version"), c.FSMVersion)
	b = appendStr(appendStr(b, "prev_hash"), c.PrevHash)
	return b
}

// optional is one omitempty field: its key and whether it is set.
type optional struct {
	key string
	set bool
}

func countSet(fields []optional) int {
	n := 0
	for _, f := range fields {
		if f.set {
			n++
		}
	}
	return n
}

func appendEvent(b []byte, e *domain.Event) []byte {
	opt := [...]optional{
		{"source", e.Source != ""}, {"status", e.Status != ""}, {"object", e.Object != ""}, {"key", e.Key != ""},
		{"slug", e.Slug != ""}, {"enrollment_id", e.EnrollmentID != ""}, {"from", e.From != ""}, {"to", e.To != ""},
		{"branch", e.Branch != ""}, {"experiment_type", e.ExperimentType != ""}, {"preference", e.Preference != ""},
		{"addon_id", e.AddonID != ""}, {"addon_version", e.AddonVersion != ""}, {"reason", e.Reason != ""},
		{"reset_value", e.ResetValue}, {"studies_enabled", e.StudiesEnabled},
	}
	// Fields added later, after the bools in struct order.
	late := [...]optional{{"action", e.Action != ""}, {"arguments", e.Arguments != ""}, {"skipped", e.Skipped != ""},
		{"preference_type", e.PreferenceType != ""}, {"preference_branch_type", e.PreferenceBranchType != ""},
		{"branch_value", e.BranchValue != ""}}
	lateVals := [...]string{e.Action, string(e.Arguments), e.Skipped, e.PreferenceType, e.PreferenceBranchType, string(e.BranchValue)}
	vals := [...]string{e.Source, string(e.Status), string(e.Object), e.Key, e.Slug, e.EnrollmentID,
		string(e.From), string(e.To), e.Branch, string(e.ExperimentType), e.Preference, e.AddonID, e.AddonVersion, e.Reason}
	n := 1 + countSet(opt[:]) + countSet(late[:])
	if len(e.Ratios) > 0 {
		n++
	}
	if e.FirefoxVersion != 0 {
		n++
	}
	if e.OriginalReason != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "type"), string(e.Type))
	for i, v := range vals {
		if opt[i].set {
			b = appendStr(appendStr(b, opt[i].key), v)
		}
	}
	if e.ResetValue {
		b = appendBool(appendStr(b, "reset_value"), true)
	}
	if e.StudiesEnabled {
		b = appendBool(appendStr(b, "studies_enabled"), true)
	}
	for i, v := range lateVals {
		if late[i].set {
			b = appendStr(appendStr(b, late[i].key), v)
		}
	}
	if len(e.Ratios) > 0 {
		b = appendRatios(appendStr(b, "ratios"), e.Ratios)
	}
	if e.FirefoxVersion != 0 {
		b = appendUint(appendStr(b, "firefox_version"), uint64(e.FirefoxVersion))
	}
	if e.OriginalReason != "" {
		b = appendStr(appendStr(b, "original_reason"), e.OriginalReason)
	}
	return b
}

// appendStrings writes a list of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = appendArrayLen(b, len(ss))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// appendRatios writes a study's branches and ratios.
func appendRatios(b []byte, rs []recipe.Ratio) []byte {
	b = appendArrayLen(b, len(rs))
	for _, r := range rs {
		b = appendMapLen(b, 2)
		b = appendStr(appendStr(b, "slug"), r.Slug)
		b = appendUint(appendStr(b, "ratio"), r.Ratio)
	}
	return b
}

func appendState(b []byte, s *domain.ClientState) []byte {
	n := 2
	if s.StudiesDisabled {
		n++
	}
	if !s.LastRunAt.IsZero() {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "client"), string(s.Client))
	if s.StudiesDisabled {
		b = appendBool(appendStr(b, "studies_disabled"), true)
	}
	if !s.LastRunAt.IsZero() {
		b = appendTime(appendStr(b, "last_run_at"), s.LastRunAt)
	}
	b = appendArrayLen(appendStr(b, "enrollments"), len(s.Enrollments))
	for i := range s.Enrollments {
		b = appendEnrollment(b, &s.Enrollments[i])
	}
	return b
}

func appendEnrollment(b []byte, e *domain.Enrollment) []byte {
	opt := [...]optional{
		{"branch", e.Branch != ""}, {"experiment_type", e.ExperimentType != ""}, {"preference", e.Preference != ""},
		{"addon_id", e.AddonID != ""}, {"addon_version", e.AddonVersion != ""},
	}
	vals := [...]string{e.Branch, string(e.ExperimentType), e.Preference, e.AddonID, e.AddonVersion}
	times := [...]optional{{"enrolled_at", !e.EnrolledAt.IsZero()}, {"last_seen", !e.LastSeen.IsZero()}, {"ended_at", !e.EndedAt.IsZero()}}
	timeVals := [...]time.Time{e.EnrolledAt, e.LastSeen, e.EndedAt}
	late := [...]optional{{"preference_type", e.PreferenceType != ""}, {"preference_branch_type", e.PreferenceBranchType != ""},
		{"branch_value", e.BranchValue != ""}}
	lateVals := [...]string{e.PreferenceType, e.PreferenceBranchType, string(e.BranchValue)}
	n := 5 + countSet(opt[:]) + countSet(times[:]) + countSet(late[:])
	if len(e.Ratios) > 0 {
		n++
	}
	if e.EnrollmentID != "" {
		n++
	}
	if e.Reason != "" {
		n++
	}
	if e.Failures != 0 {
		n++
	}
	if !e.TemporaryErrorDeadline.IsZero() {
		n++
	}
	if len(e.Preferences) > 0 {
		n++
	}
	if len(e.Overridden) > 0 {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "object"), string(e.Object))
	b = appendStr(appendStr(b, "key"), e.Key)
	b = appendStr(appendStr(b, "slug"), e.Slug)
	b = appendStr(appendStr(b, "action"), e.Action)
	if e.EnrollmentID != "" {
		b = appendStr(appendStr(b, "enrollment_id"), e.EnrollmentID)
	}
	b = appendStr(appendStr(b, "state"), string(e.State))
	for i, v := range vals {
		if opt[i].set {
			b = appendStr(appendStr(b, opt[i].key), v)
		}
	}
	for i, t := range timeVals {
		if times[i].set {
			b = appendTime(appendStr(b, times[i].key), t)
		}
	}
	if e.Reason != "" {
		b = appendStr(appendStr(b, "reason"), e.Reason)
	}
	if e.Failures != 0 {
		b = appendInt(appendStr(b, "failures"), int64(e.Failures))
	}
	for i, v := range lateVals {
		if late[i].set {
			b = appendStr(appendStr(b, late[i].key), v)
		}
	}
	if len(e.Ratios) > 0 {
		b = appendRatios(appendStr(b, "ratios"), e.Ratios)
	}
	if !e.TemporaryErrorDeadline.IsZero() {
		b = appendTime(appendStr(b, "temporary_error_deadline"), e.TemporaryErrorDeadline)
	}
	if len(e.Preferences) > 0 {
		b = appendStrings(appendStr(b, "preferences"), e.Preferences)
	}
	if len(e.Overridden) > 0 {
		b = appendStrings(appendStr(b, "overridden"), e.Overridden)
	}
	return b
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// appendTime writes msgpack's timestamp extension (type -1) as msgpack v5 does.
func appendTime(b []byte, t time.Time) []byte {
	secs := uint64(t.Unix())
	if secs>>34 == 0 {
		data := uint64(t.Nanosecond())<<34 | secs
		if data&0xffffffff00000000 == 0 {
			return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(data))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), data)
	}
	b = append(b, 0xc7, 12, 0xff)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	return binary.BigEndian.AppendUint64(b, secs)
}
