#!/usr/bin/env bash
# ensure-chromium: the study page's browser test (make test) drives Debian's chromium.
# Install it when it is missing, so that make test runs on a fresh machine; as root, or
# through sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "chromium is missing, and installing it needs root: apt-get update && apt-get install -y chromium" >&2
    exit 1
  fi
  as_root=(sudo)
fi
echo "installing chromium for the study page's browser test (apt-get)"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
chromium --version
