package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Format is an export format.
type Format string

// Export formats.
const (
	// FormatJSONL writes one decoded commit envelope (Envelope) per line.
	FormatJSONL Format = "jsonl"
	// FormatCSV writes one row per event (CSVHeader).
	FormatCSV Format = "csv"
	// FormatTelemetry writes one enrollment event per line in Firefox's Telemetry
	// shape: client_id, timestamp (ms), category, method, object, value, extra.
	FormatTelemetry Format = "telemetry"
)

// Formats lists the export formats.
var Formats = []Format{FormatJSONL, FormatCSV, FormatTelemetry}

// ErrFormat: an unknown format, or one that cannot carry what was asked for.
var ErrFormat = errors.New("audit: unsupported export format")

// ParseFormat accepts jsonl, csv or telemetry.
func ParseFormat(v string) (Format, error) {
	for _, f := range Formats {
		if string(f) == v {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q (allowed: jsonl, csv, telemetry)", ErrFormat, v)
}

// Envelope is the JSON form of a commit as stored: its position and hash beside every
// field of the commit.
type Envelope struct {
	Seq           uint64               `json:"seq"`
	Hash          string               `json:"hash"`
	PrevHash      string               `json:"prev_hash"`
	Schema        int                  `json:"schema"`
	CommitID      string               `json:"commit_id"`
	CommandID     string               `json:"command_id"`
	CommandType   domain.CommandType   `json:"command_type"`
	CommandSeq    uint64               `json:"command_seq"`
	CorrelationID string               `json:"correlation_id,omitempty"`
	Client        domain.ClientID      `json:"client_id"`
	At            time.Time            `json:"at"`
	Events        []domain.Event       `json:"events"`
	State         domain.ClientState   `json:"state"`
	Recent        []eventstore.Applied `json:"recent"`
	FSMVersion    string               `json:"fsm_version"`
}

// EnvelopeOf is r's JSON form.
func EnvelopeOf(r eventstore.Record) Envelope {
	c := r.Commit
	ev := c.Events
	if ev == nil {
		ev = []domain.Event{}
	}
	return Envelope{Seq: r.Position, Hash: r.Hash, PrevHash: c.PrevHash, Schema: c.Schema, CommitID: c.CommitID,
		CommandID: c.CommandID, CommandType: c.CommandType, CommandSeq: c.CommandSeq, CorrelationID: c.CorrelationID,
		Client: c.Client, At: c.At, Events: ev, State: c.State, Recent: c.Recent, FSMVersion: c.FSMVersion}
}

// RejectionLine is the JSON form of a recorded rejection.
type RejectionLine struct {
	Seq       uint64               `json:"seq"`
	CommandID string               `json:"command_id,omitempty"`
	Client    domain.ClientID      `json:"client_id,omitempty"`
	Subject   string               `json:"subject,omitempty"`
	Code      domain.RejectionCode `json:"code"`
	Error     string               `json:"error"`
	At        time.Time            `json:"at"`
	StreamSeq uint64               `json:"command_stream_seq,omitempty"`
	Payload   string               `json:"payload,omitempty"` // the evidence kept, as text
}

// CSVHeader is the header row of the CSV export.
var CSVHeader = []string{"seq", "at", "client_id", "commit_id", "command_id", "command_type", "event_index",
	"type", "source", "status", "object", "key", "slug", "branch", "from", "to", "reason",
	"enrollment_id", "experiment_type", "preference", "addon_id", "addon_version", "reset_value", "studies_enabled",
	"firefox_version", "original_reason"}

// rejectionCSVHeader is the header row of the CSV export of rejections.
var rejectionCSVHeader = []string{"seq", "at", "client_id", "command_id", "subject", "code", "error", "command_stream_seq"}

// Exporter writes selected commits or rejections in one format. It buffers; Close
// flushes.
type Exporter struct {
	format Format
	sel    Selection
	w      *bufio.Writer
	enc    *json.Encoder // into buf, so a value JSON cannot hold writes nothing
	buf    bytes.Buffer
	csv    *csv.Writer
	row    []string

	// Commits and Lines count what was written: commits selected and lines (events,
	// envelopes or rejections) out.
	Commits, Lines uint64
	// Skipped are the records that could not be written in this format (a time JSON
	// cannot hold): reported, not fatal, so one record never stops an export.
	Skipped []Skipped
}

// Skipped is a record an export left out, and why.
type Skipped struct {
	Seq uint64 `json:"seq"`
	Err string `json:"error"`
}

// encode writes v as one JSON line; a value JSON cannot hold is skipped and recorded,
// an error of the writer returned.
func (x *Exporter) encode(seq uint64, v any) error {
	x.buf.Reset()
	if err := x.enc.Encode(v); err != nil { // only marshalling: the buffer cannot fail
		x.Skipped = append(x.Skipped, Skipped{Seq: seq, Err: err.Error()})
		return nil
	}
	x.Lines++
	if _, err := x.w.Write(x.buf.Bytes()); err != nil {
		return fmt.Errorf("export seq %d: %w", seq, err)
	}
	return nil
}

// NewExporter writes format f to w. rejections selects the rejection listing instead
// of commits; it has no Telemetry shape.
func NewExporter(w io.Writer, f Format, sel Selection, rejections bool) (*Exporter, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, err
	}
	if rejections && f == FormatTelemetry {
		return nil, fmt.Errorf("%w: rejections have no Telemetry shape (use jsonl or csv)", ErrFormat)
	}
	x := &Exporter{format: f, sel: sel, w: bufio.NewWriterSize(w, 64<<10)}
	x.enc = json.NewEncoder(&x.buf)
	x.enc.SetEscapeHTML(false)
	if f == FormatCSV {
		x.csv = csv.NewWriter(x.w)
		header := CSVHeader
		if rejections {
			header = rejectionCSVHeader
		}
		x.row = make([]string, len(header))
		if err := x.csv.Write(header); err != nil {
			return nil, fmt.Errorf("export csv header: %w", err)
		}
	}
	return x, nil
}

// Commit writes r if the selection keeps it.
func (x *Exporter) Commit(r eventstore.Record) error {
	c := &r.Commit
	if !x.sel.Match(c) {
		return nil
	}
	x.Commits++
	switch x.format {
	case FormatJSONL:
		return x.encode(r.Position, EnvelopeOf(r))
	case FormatTelemetry:
		return x.sel.Events(c, func(_ int, e *domain.Event) error {
			t, ok := e.Telemetry(c.Client, c.At)
			if !ok {
				return nil
			}
			return x.encode(r.Position, t)
		})
	}
	return x.sel.Events(c, func(i int, e *domain.Event) error {
		x.Lines++
		row := x.row[:0]
		row = append(row, u64(r.Position), c.At.Format(time.RFC3339Nano), string(c.Client), c.CommitID, c.CommandID,
			string(c.CommandType), strconv.Itoa(i), string(e.Type), e.Source, string(e.Status), string(e.Object), e.Key,
			e.Slug, e.Branch, string(e.From), string(e.To), e.Reason, e.EnrollmentID, string(e.ExperimentType),
			e.Preference, e.AddonID, e.AddonVersion, resetValue(e), studiesEnabled(e),
			firefoxVersion(e.FirefoxVersion), e.OriginalReason)
		if err := x.csv.Write(row); err != nil {
			return fmt.Errorf("export seq %d: %w", r.Position, err)
		}
		return nil
	})
}

// firefoxVersion is the CSV cell of the deciding Firefox version: empty when unversioned.
func firefoxVersion(v domain.FirefoxVersion) string {
	if v == 0 {
		return ""
	}
	return v.String()
}

// Rejection writes the rejection at seq.
func (x *Exporter) Rejection(seq uint64, r eventstore.Rejection) error {
	if !x.sel.Since.IsZero() && r.At.Before(x.sel.Since) || !x.sel.Until.IsZero() && !r.At.Before(x.sel.Until) {
		return nil
	}
	if x.format == FormatCSV {
		x.Lines++
		row := append(x.row[:0], u64(seq), r.At.Format(time.RFC3339Nano), string(r.Client), r.CommandID, r.Subject,
			string(r.Code), r.Error, u64(r.StreamSeq))
		if err := x.csv.Write(row); err != nil {
			return fmt.Errorf("export rejection seq %d: %w", seq, err)
		}
		return nil
	}
	return x.encode(seq, RejectionLine{Seq: seq, CommandID: r.CommandID, Client: r.Client, Subject: r.Subject, Code: r.Code,
		Error: r.Error, At: r.At, StreamSeq: r.StreamSeq, Payload: string(r.Payload)})
}

// Close flushes what is buffered.
func (x *Exporter) Close() error {
	if x.csv != nil {
		x.csv.Flush()
		if err := x.csv.Error(); err != nil {
			return fmt.Errorf("export csv: %w", err)
		}
	}
	if err := x.w.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// resetValue is the CSV cell of didResetValue: set on a preference study's unenroll
// only, empty on every other row (where false would be a claim, not a fact).
func resetValue(e *domain.Event) string {
	if e.Type != domain.EventUnenrolled || e.Object != domain.PreferenceStudy {
		return ""
	}
	return strconv.FormatBool(e.ResetValue)
}

// studiesEnabled is the CSV cell of the opt-out pref: set on its change only.
func studiesEnabled(e *domain.Event) string {
	if e.Type != domain.EventStudiesOptOutChanged {
		return ""
	}
	return strconv.FormatBool(e.StudiesEnabled)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
