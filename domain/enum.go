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
	return "", fmt.Errorf("%w: %s", ErrInvalid, enumMessage(kind, v, allowed))
}

// enumMessage says which value of kind is unknown and what is allowed.
func enumMessage[T ~string](kind, v string, allowed []T) string {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Sprintf("unknown %s %q (allowed: %s)", kind, v, strings.Join(names, ", "))
}

// sentinelError is an error that matches several sentinels (errors.Is) but says what
// went wrong once, instead of one prefix per sentinel.
type sentinelError struct {
	msg string
	is  []error
}

func (e *sentinelError) Error() string   { return e.msg }
func (e *sentinelError) Unwrap() []error { return e.is }
