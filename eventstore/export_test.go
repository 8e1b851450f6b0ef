package eventstore

// EncodeCommitReflect exposes the reference encoding to the external tests.
var EncodeCommitReflect = encodeCommitReflect

// DecodeCommitReflect is DecodeCommit through msgpack's reflective decoder only.
var DecodeCommitReflect = decodeCommitReflect

// DecodeCommitFast is the reflection-free decoder alone; ok is false where it defers.
var DecodeCommitFast = decodeCommitFast
