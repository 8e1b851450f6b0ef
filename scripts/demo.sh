#!/usr/bin/env bash
# make demo: start studyd on its embedded default in a scratch data dir (on spare ports),
# simulate a small fleet, show the views and verify the log, then stop studyd.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
./bin/studyd --data "$data" --nats-listen 127.0.0.1:14222 --http 127.0.0.1:19180 >"$data/studyd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 200); do curl -sf http://127.0.0.1:19180/readyz >/dev/null && break; sleep 0.1; done
export NATS_URL=nats://127.0.0.1:14222
step() { printf '\n== %s\n' "$*"; }
step "studyctl simulate --clients 200 --days 14 (waits until studyd has decided every command)"
./bin/studyctl simulate --clients 200 --days 14 --seed 1
step "studyctl studies (the totals are simulate's expected numbers)"
./bin/studyctl studies
study=$(./bin/studyctl studies --json | sed -n 's/.*"key": "\(pref[^"]*\)".*/\1/p' | head -1)
step "studyctl study preference_study/$study"
./bin/studyctl study "preference_study/$study"
step "studyctl uptake (runner)"
./bin/studyctl uptake | grep -E 'SOURCE|normandy/runner'
step "studyctl audit --format telemetry (first 3 events)"
{ ./bin/studyctl audit --format telemetry 2>/dev/null || true; } | head -3
step "studyctl verify --commit-key <data>/commit.key"
./bin/studyctl verify --commit-key "$data/commit.key"
