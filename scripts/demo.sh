#!/usr/bin/env bash
# make demo: start studyd on its embedded default in a scratch data dir, simulate a
# small fleet, show the views, stop studyd. Needs `make build` first (make demo does it).
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
./bin/studyd --data "$data" --nats-listen 127.0.0.1:14222 --http 127.0.0.1:19180 >"$data/studyd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19180/readyz >/dev/null && break; sleep 0.1; done
export NATS_URL=nats://127.0.0.1:14222
echo "== simulate 200 clients over 14 days"
./bin/studyctl simulate --clients 200 --days 14 --seed 1
sleep 1
echo "== uptake"
./bin/studyctl uptake | head -20
echo "== studies"
./bin/studyctl study preference_study "$(./bin/studyctl study --list 2>/dev/null | head -1 || echo pref-study-1)" || true
echo "== verify"
./bin/studyctl verify
