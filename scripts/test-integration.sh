#!/usr/bin/env bash
# make test-integration: the container suite, run once. A failing test fails the suite:
# there is no retry to lean on (studyd's start-up waits out a slow cluster itself).
#
# The whole output is kept in integration.log. A failing test dumps its nodes' and
# studyd's logs after its own messages, which pushes them out of a CI log's tail, so on
# a failure the script ends by printing each failed test's own lines again.
set -euo pipefail
cd "$(dirname "$0")/.."
log=integration.log
rc=0
go test -count=1 -timeout 25m -v ./tests/integration/ 2>&1 | tee "$log" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo
  echo "== integration suite failed (exit $rc); each failed test's own lines (whole output in $log):"
  ./scripts/failure-digest.awk "$log"
fi
exit "$rc"
