// Package wire decodes what publishers send studyd — commands in msgpack or JSON — with
// every length, count and nesting depth checked against the bytes actually present and
// against documented limits before anything is allocated, so that no body, however
// hostile, can make a decode cost more memory than a small multiple of its own size.
//
// The limits are in limits.go and in docs/commands.md ("Limits"). Beyond them a body is
// malformed, and the error names the field and the byte offset where it went wrong.
package wire
