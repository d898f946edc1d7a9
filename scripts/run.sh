#!/usr/bin/env bash
# Set up and start the bot: Telegram and/or Discord when their tokens are set, else the console chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m bot validate >/dev/null
exec .venv/bin/python -m bot serve "$@"
