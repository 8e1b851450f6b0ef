//go:build !unix

package audit_test

func processCPU() (int64, bool) { return 0, false }
