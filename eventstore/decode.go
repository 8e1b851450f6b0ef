package eventstore

import (
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/recipe"
)

// decodeCommitFast decodes a schema-2 commit without reflection, into exactly what
// msgpack v5's reflective decoder (decodeStrict into a Commit) would produce before
// normalisation. It answers ok=false for anything it does not read in precisely that
// decoder's way: another schema, bytes that are not one complete msgpack value, an
// unknown or repeated key (repeated keys merge into the earlier value in msgpack's
// decoder), a struct encoded as an array, a type msgpack would refuse. The caller then
// takes the reflective path, which also writes the error, so an audit sees the same
// result and the same message either way. FuzzDecodeEquivalence holds the two together.
func decodeCommitFast(b []byte) (c Commit, ok bool) { return decodeCommitWith(&reader{b: b}) }

// decodeCommitWith is decodeCommitFast through r, which may be lean (see reader.lean):
// the same reads in the same order either way, so both accept exactly the same bytes.
func decodeCommitWith(r *reader) (c Commit, ok bool) {
	b := r.b
	// The envelope opens with its schema (peekSchema's rule); anything but 2 is the
	// reflective path's business (upcasts, unknown-schema errors).
	n := r.mapLen()
	if n < 1 || string(r.key()) != "schema" || r.int() != SchemaVersion || r.bad {
		return Commit{}, false
	}
	c.Schema = SchemaVersion
	seen := uint32(1) // bit 0: schema
	for range n - 1 {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "commit_id":
			bit, c.CommitID = 1<<1, r.opt()
		case "command_id":
			bit, c.CommandID = 1<<2, r.id()
		case "command_type":
			bit, c.CommandType = 1<<3, domain.CommandType(r.enum())
		case "command_seq":
			bit, c.CommandSeq = 1<<4, r.uint()
		case "correlation_id":
			bit, c.CorrelationID = 1<<5, r.opt()
		case "client":
			bit, c.Client = 1<<6, domain.ClientID(r.id())
		case "at":
			bit, c.At = 1<<7, r.time()
		case "events":
			bit, c.Events = 1<<8, r.events()
		case "state":
			bit = 1 << 9
			r.state(&c.State)
		case "recent":
			bit, c.Recent = 1<<10, r.recent(!r.lean)
		case "fsm_version":
			bit, c.FSMVersion = 1<<11, r.str()
		case "prev_hash":
			bit, c.PrevHash = 1<<12, r.id()
		case "command_digest":
			bit, c.CommandDigest = 1<<13, r.opt()
		case "schema":
			bit = 1 // a second schema: repeated key
		default:
			r.bad = true // msgpack refuses unknown fields (DisallowUnknownFields)
		}
		if r.bad || seen&bit != 0 {
			return Commit{}, false
		}
		seen |= bit
	}
	if r.bad || r.pos != len(b) {
		return Commit{}, false
	}
	return c, true
}

func (r *reader) events() []domain.Event {
	n := r.arrayLen()
	if n <= 0 {
		return nil // nil or empty: normalizeCommit makes both nil
	}
	s := r.arena.eventsFor(n)
	for i := range s {
		if r.event(&s[i]); r.bad {
			return nil
		}
	}
	return s
}

func (r *reader) event(e *domain.Event) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "type":
			bit, e.Type = 1<<0, domain.EventType(r.enum())
		case "source":
			bit, e.Source = 1<<1, r.enum()
		case "status":
			bit, e.Status = 1<<2, domain.UptakeStatus(r.enum())
		case "object":
			bit, e.Object = 1<<3, domain.Object(r.enum())
		case "key":
			bit, e.Key = 1<<4, r.str()
		case "slug":
			bit, e.Slug = 1<<5, r.str()
		case "enrollment_id":
			bit, e.EnrollmentID = 1<<6, r.id()
		case "from":
			bit, e.From = 1<<7, domain.State(r.enum())
		case "to":
			bit, e.To = 1<<8, domain.State(r.enum())
		case "branch":
			bit, e.Branch = 1<<9, r.str()
		case "experiment_type":
			bit, e.ExperimentType = 1<<10, domain.ExperimentType(r.enum())
		case "preference":
			bit, e.Preference = 1<<11, r.str()
		case "addon_id":
			bit, e.AddonID = 1<<12, r.str()
		case "addon_version":
			bit, e.AddonVersion = 1<<13, r.str()
		case "reason":
			bit, e.Reason = 1<<14, r.enum()
		case "reset_value":
			bit, e.ResetValue = 1<<15, r.bool()
		case "studies_enabled":
			bit, e.StudiesEnabled = 1<<16, r.bool()
		case "action":
			bit, e.Action = 1<<17, r.str()
		case "arguments":
			bit, e.Arguments = 1<<18, domain.JSONText(r.str())
		case "skipped":
			bit, e.Skipped = 1<<19, r.str()
		case "preference_type":
			bit, e.PreferenceType = 1<<20, r.enum()
		case "preference_branch_type":
			bit, e.PreferenceBranchType = 1<<21, r.enum()
		case "branch_value":
			bit, e.BranchValue = 1<<22, domain.JSONText(r.str())
		case "ratios":
			bit, e.Ratios = 1<<23, r.ratios(true)
		case "firefox_version":
			bit, e.FirefoxVersion = 1<<24, domain.FirefoxVersion(r.uint())
		case "original_reason":
			bit, e.OriginalReason = 1<<25, r.enum()
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

// state decodes into s, which is zero: a nil state leaves it so, as msgpack does.
func (r *reader) state(s *domain.ClientState) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "client":
			bit, s.Client = 1<<0, domain.ClientID(r.str())
		case "studies_disabled":
			bit, s.StudiesDisabled = 1<<1, r.bool()
		case "last_run_at":
			bit, s.LastRunAt = 1<<2, r.time()
		case "enrollments":
			bit, s.Enrollments = 1<<3, r.enrollments()
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

func (r *reader) enrollments() []domain.Enrollment {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	s := r.arena.enrollmentsFor(n)
	for i := range s {
		if r.enrollment(&s[i]); r.bad {
			return nil
		}
	}
	return s
}

func (r *reader) enrollment(e *domain.Enrollment) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "object":
			bit, e.Object = 1<<0, domain.Object(r.enum())
		case "key":
			bit, e.Key = 1<<1, r.str()
		case "slug":
			bit, e.Slug = 1<<2, r.opt()
		case "action":
			bit, e.Action = 1<<3, r.str()
		case "enrollment_id":
			bit, e.EnrollmentID = 1<<4, r.opt()
		case "state":
			bit, e.State = 1<<5, domain.State(r.enum())
		case "branch":
			bit, e.Branch = 1<<6, r.opt()
		case "experiment_type":
			bit, e.ExperimentType = 1<<7, domain.ExperimentType(r.optEnum())
		case "preference":
			bit, e.Preference = 1<<8, r.opt()
		case "addon_id":
			bit, e.AddonID = 1<<9, r.opt()
		case "addon_version":
			bit, e.AddonVersion = 1<<10, r.opt()
		case "enrolled_at":
			bit, e.EnrolledAt = 1<<11, r.time()
		case "last_seen":
			bit, e.LastSeen = 1<<12, r.time()
		case "ended_at":
			bit, e.EndedAt = 1<<13, r.time()
		case "reason":
			bit, e.Reason = 1<<14, r.optEnum()
		case "failures":
			bit, e.Failures = 1<<15, int(r.int())
		case "preference_type":
			bit, e.PreferenceType = 1<<16, r.optEnum()
		case "preference_branch_type":
			bit, e.PreferenceBranchType = 1<<17, r.optEnum()
		case "branch_value":
			bit, e.BranchValue = 1<<18, domain.JSONText(r.opt())
		case "ratios":
			bit, e.Ratios = 1<<19, r.ratios(!r.lean)
		case "temporary_error_deadline":
			bit, e.TemporaryErrorDeadline = 1<<20, r.time()
		case "preferences":
			bit, e.Preferences = 1<<21, r.strings(!r.lean)
		case "overridden":
			bit, e.Overridden = 1<<22, r.strings(!r.lean)
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

// strings decodes a list of strings; nil and empty both come back nil, and so does
// every list unless keep (the same reads, nothing made).
func (r *reader) strings(keep bool) []string {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	if !keep {
		for range n {
			if r.raw(); r.bad {
				return nil
			}
		}
		return nil
	}
	s := make([]string, n)
	for i := range s {
		if s[i] = r.str(); r.bad {
			return nil
		}
	}
	return s
}

// ratios decodes a study's branches and ratios; nil and empty both come back nil, as
// normalizeCommit leaves them, and so does every list unless keep.
func (r *reader) ratios(keep bool) []recipe.Ratio {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	var s []recipe.Ratio
	if keep {
		s = make([]recipe.Ratio, n)
	}
	var scratch recipe.Ratio
	for i := range n {
		br := &scratch
		if keep {
			br = &s[i]
		}
		m := r.structLen()
		var seen uint32
		for range m {
			k := r.key()
			var bit uint32
			switch string(k) {
			case "slug":
				bit, br.Slug = 1<<0, r.strIf(keep)
			case "ratio":
				bit, br.Ratio = 1<<1, r.uint()
			default:
				r.bad = true
			}
			if r.bad || seen&bit != 0 {
				r.bad = true
				return nil
			}
			seen |= bit
		}
	}
	return s
}

// recent decodes the recent command ids; nil and empty both come back nil, and so does
// every list unless keep.
func (r *reader) recent(keep bool) []Applied {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	var s []Applied
	if keep {
		s = make([]Applied, n)
	}
	var scratch Applied
	for i := range n {
		a := &scratch
		if keep {
			a = &s[i]
		}
		m := r.structLen()
		var seen uint32
		for range m {
			k := r.key()
			var bit uint32
			switch string(k) {
			case "command_id":
				bit, a.CommandID = 1<<0, r.strIf(keep)
			case "command_seq":
				bit, a.CommandSeq = 1<<1, r.uint()
			case "position":
				bit, a.Position = 1<<2, r.uint()
			default:
				r.bad = true
			}
			if r.bad || seen&bit != 0 {
				r.bad = true
				return nil
			}
			seen |= bit
		}
	}
	return s
}
