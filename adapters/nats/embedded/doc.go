// Package embedded runs the nats-server studyd starts in-process when no external NATS
// is given, and connects to it without a socket. It is the only package of studyd that
// links nats-server (besides natstest, for tests).
package embedded
