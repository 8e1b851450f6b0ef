//go:build !linux

package eventstore_test

func threadCPU() (int64, bool) { return 0, false }
