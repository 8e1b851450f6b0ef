package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"
)

func TestDecodeCommandRoundTripAndErrors(t *testing.T) {
	t.Parallel()
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "c1", ClientID: "client-1",
		At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	packed, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommand("", packed)
	if err != nil || got.CommandID != "c1" || !got.At.Equal(cmd.At) {
		t.Fatalf("DecodeCommand(msgpack) = %+v, %v; want %+v", got, err, cmd)
	}
	sniffed, err := DecodeCommand("", []byte(` {"type":"opt_out","command_id":"c2"}`))
	if err != nil || sniffed.CommandID != "c2" {
		t.Errorf("DecodeCommand(JSON without content type) = %+v, %v; want command c2", sniffed, err)
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        error
	}{
		{name: "unknown json field", contentType: ContentTypeJSON, body: `{"type":"opt_out","colour":1}`, want: ErrMalformed},
		{name: "trailing json", contentType: ContentTypeJSON, body: `{"type":"opt_out"} {}`, want: ErrMalformed},
		{name: "not json", contentType: ContentTypeJSON, body: `type=opt_out`, want: ErrMalformed},
		{name: "trailing msgpack", contentType: "", body: string(packed) + "x", want: ErrMalformed},
		{name: "garbage msgpack", contentType: ContentTypeMsgpack, body: "\xc1\xc1", want: ErrMalformed},
		{name: "text without content type", contentType: "", body: "garbage", want: ErrMalformed},
		{name: "xml", contentType: "application/xml", body: "<a/>", want: ErrUnsupportedContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeCommand(tt.contentType, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeCommand(%q) error = %v, want %v", tt.body, err, tt.want)
			}
			// Each thing is said once: no "json: json:", no "msgpack: msgpack:".
			if err != nil {
				for _, word := range []string{"json:", "msgpack:", "malformed"} {
					if n := strings.Count(err.Error(), word); n > 1 {
						t.Errorf("DecodeCommand(%q) error %q says %q %d times", tt.body, err, word, n)
					}
				}
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(ContentTypeJSON, []byte(`{"type":"recipe_run","command_id":"a","client_id":"b","at":"2026-01-01T00:00:00Z","runner_status":"RUNNER_SUCCESS"}`))
	f.Add("", []byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0xa7, 'o', 'p', 't', '_', 'o', 'u', 't'})
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		cmd, err := DecodeCommand(contentType, body)
		if err != nil {
			return
		}
		_ = cmd.Validate() // must not panic on anything that decodes
		packed, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("EncodeCommand of a decoded command: %v", err)
		}
		if _, err := DecodeCommand("", packed); err != nil {
			t.Fatalf("re-decode of an encoded command: %v", err)
		}
	})
}
