package eventstore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/studyd/studyd/eventstore"
)

func FuzzDecodeCommit(f *testing.F) {
	good, err := eventstore.EncodeCommit(everyEvent())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	if v1, err := os.ReadFile(filepath.Join("testdata", "commit_v1.msgpack")); err == nil {
		f.Add(v1)
	}
	f.Add([]byte{0x81, 0xa6, 's', 'c', 'h', 'e', 'm', 'a', 0x02})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := eventstore.DecodeCommit(b)
		if err != nil {
			return
		}
		if canon := c.Canonical(); !reflect.DeepEqual(c, canon) {
			t.Fatalf("a decoded commit is not canonical: %+v vs %+v", c, canon)
		}
		raw, err := eventstore.EncodeCommit(c)
		if err != nil {
			t.Fatalf("a decoded commit does not encode: %v", err)
		}
		if ref, err := eventstore.EncodeCommitReflect(c); err != nil || !bytes.Equal(raw, ref) {
			t.Fatalf("the fast encoder differs from msgpack's: %x vs %x (%v)", raw, ref, err)
		}
		again, err := eventstore.DecodeCommit(raw)
		if err != nil {
			t.Fatalf("a re-encoded commit does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("got %+v after a round trip, want %+v", again, c)
		}
		raw2, err := eventstore.EncodeCommit(again)
		if err != nil || !bytes.Equal(raw, raw2) {
			t.Fatalf("encoding is not canonical: %x vs %x (%v)", raw, raw2, err)
		}
	})
}

func FuzzDecodeRejection(f *testing.F) {
	good, err := eventstore.EncodeRejection(sampleRejection())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0x81, 0xa6, 's', 'c', 'h', 'e', 'm', 'a', 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := eventstore.DecodeRejection(b)
		if err != nil {
			return
		}
		raw, err := eventstore.EncodeRejection(r)
		if err != nil {
			t.Fatalf("a decoded rejection does not encode: %v", err)
		}
		again, err := eventstore.DecodeRejection(raw)
		if err != nil {
			t.Fatalf("a re-encoded rejection does not decode: %v", err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("got %+v after a round trip, want %+v", again, r)
		}
	})
}
