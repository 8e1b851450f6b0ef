package wire

import (
	"strings"

	"github.com/studyd/studyd/domain"
)

// Structural limits on a decoded body. Counts are checked when a container's header is
// read, before any element is decoded, so a header announcing more is refused at once.
const (
	// MaxDepth is the deepest nesting of maps and arrays accepted (a command needs 6:
	// command → recipes → recipe → arguments → branches → branch).
	MaxDepth = 32
	// MaxContainerLen bounds any array or map studyd does not know a tighter limit for.
	MaxContainerLen = 1024
	// MaxBody is the largest body decoded at all.
	MaxBody = domain.MaxCommandPayload
)

// arrayLimit is the most elements an array under key may hold: the command's own
// limits for the arrays it knows, MaxContainerLen for any other. Keys match without
// regard to case, as encoding/json matches struct fields.
func arrayLimit(key string) int {
	switch {
	case strings.EqualFold(key, "recipes"):
		return domain.MaxRecipesPerRun
	case strings.EqualFold(key, "actions"):
		return domain.MaxActionsPerRun
	case strings.EqualFold(key, "branches"):
		return domain.MaxBranches
	}
	return MaxContainerLen
}

// arrayLimitOf is arrayLimit for a key still in its encoded bytes.
func arrayLimitOf(key []byte) int {
	if len(key) > len("branches") {
		return MaxContainerLen
	}
	return arrayLimit(string(key)) // short: the conversion does not escape
}
