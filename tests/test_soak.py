"""A soak in small: 1,500 questions through one `python -m bot chat --jsonl` process.

scripts/soak.py does the work and checks the bounds: resident memory grows at most 5% after
warm-up, open file descriptors don't grow, conversation state is gone once its TTL has
passed, and every question is answered. The full 20,000-question run is the same script
without --questions; its figures go in the closing note of issue 9.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fifteen_hundred_questions_keep_memory_descriptors_and_state_within_bounds(engine):
    # `engine` is requested so the index cache is built before the soak's process starts.
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "soak.py"), "--questions", "1500"],
                            capture_output=True, text=True, cwd=ROOT, timeout=1800)
    print(result.stdout)  # the table, for `pytest -s` or a failure report
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "every bound held" in result.stdout
    for row in ("resident memory", "open file descriptors", "answers per second", "state after its TTL"):
        assert row in result.stdout
