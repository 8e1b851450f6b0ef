// Package eventstore defines studyd's log: the commit envelope (one per command, with
// its events and the client's resulting state), its msgpack codec, the Store contract
// that the memory and JetStream stores both implement, and the conformance suite they
// both pass (package storetest).
package eventstore
