#!/usr/bin/env bash
# Create .venv in the project root and install the project (idempotent, quick when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned in pyproject.toml to the CPU wheel (2.13.0); never let a resolver pick a CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi

# The state tests run against a real redis-server (Debian package). Install it for the test set-up when
# it is missing and we can (root with apt-get); otherwise those tests explain how (and fail under CI=true).
if [ "$extras" = "test" ] && ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server for the tests" >&2
    if ! output=$( { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                     apt-get install -y -qq --no-install-recommends redis-server; } 2>&1 ); then
      printf '%s\n' "$output" | tail -n 5 >&2
      echo "note: installing redis-server failed; the Redis state tests will say so" >&2
    fi
  else
    echo "note: redis-server is missing (apt-get install redis-server); the Redis state tests need it" >&2
  fi
fi
