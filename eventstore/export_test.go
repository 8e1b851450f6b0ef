package eventstore

// EncodeCommitReflect exposes the reference encoding to the external tests.
var EncodeCommitReflect = encodeCommitReflect

// DecodeCommitReflect is DecodeCommit through msgpack's reflective decoder only.
var DecodeCommitReflect = decodeCommitReflect

// DecodeCommitFast is the reflection-free decoder alone; ok is false where it defers.
var DecodeCommitFast = decodeCommitFast

// DecodeCommitLeanFast is the lean read alone; ok is false where DecodeCommitLean
// defers to DecodeCommit.
func DecodeCommitLeanFast(b []byte) (Commit, bool) {
	return decodeCommitWith(&reader{b: b, lean: true})
}

// StringBytes is the bytes of the strings the arena keeps.
func (a *Arena) StringBytes() int { return a.strBytes }

// ArenaStringBytes bounds StringBytes.
const ArenaStringBytes = arenaStringBytes
