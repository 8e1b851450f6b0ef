// Package intake is studyd's command intake: the STUDYD_CMDS work-queue stream and its
// partition consumers, which apply each command through the app layer, and the
// studyd.submit request/reply endpoint, with the intake's Prometheus metrics.
package intake
