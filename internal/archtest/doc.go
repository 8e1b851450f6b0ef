// Package archtest holds the architecture test: the import rules of studyd's packages,
// checked from `go list -deps -json` on every `make test`. It has no code of its own.
package archtest
