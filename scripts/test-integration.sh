#!/usr/bin/env bash
# make test-integration: the container suite, run once. A failing test fails the suite:
# there is no retry to lean on (studyd's start-up waits out a slow cluster itself).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -count=1 -timeout 25m -v ./tests/integration/
