#!/usr/bin/env bash
# Set up and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# pip-audit: known vulnerabilities with a fixed version fail the run; an unreachable service only warns.
.venv/bin/python scripts/audit_deps.py
.venv/bin/python -m bot validate
exec .venv/bin/python -m pytest "$@"
