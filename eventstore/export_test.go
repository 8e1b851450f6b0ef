package eventstore

// EncodeCommitReflect exposes the reference encoding to the external tests.
var EncodeCommitReflect = encodeCommitReflect
