package domain

import (
	"fmt"
	"slices"
	"strings"
)

// parseEnum returns v as T if it is one of allowed, or an error naming the value and
// the allowed set, so that a rejected command says what would have been accepted.
func parseEnum[T ~string](kind, v string, allowed []T) (T, error) {
	if slices.Contains(allowed, T(v)) {
		return T(v), nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", fmt.Errorf("%w: unknown %s %q (allowed: %s)", ErrInvalid, kind, v, strings.Join(names, ", "))
}
