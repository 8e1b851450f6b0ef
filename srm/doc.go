// Package srm tests a study for a sample-ratio mismatch: its per-branch enrollments
// against the split its recipe asked for (χ², flagged below Threshold). It is pure: it
// reads a study view and does no I/O.
package srm
