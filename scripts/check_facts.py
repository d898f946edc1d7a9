"""Check some fact files while the rest of the base is being edited.

    python scripts/check_facts.py knowledge/facts/linkedin.yaml [more files]

Prints the problems found in those files only (quotes not found, unknown ids,
missing fields...) and a count of facts per topic. `python -m bot validate` is the
full check, including "a source that no fact cites".
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bot.knowledge import DEFAULT_KNOWLEDGE_DIR, KnowledgeError, load_knowledge


def main() -> int:
    wanted = {Path(arg).name for arg in sys.argv[1:]}
    try:
        knowledge = load_knowledge(DEFAULT_KNOWLEDGE_DIR)
        problems = []
        facts = knowledge.facts
    except KnowledgeError as error:
        problems = [p for p in error.problems if Path(p.file).name in wanted]
        facts = None
    for problem in problems:
        print(problem)
    if facts is not None:
        counts = Counter((f.platform, f.topic) for f in facts if Path(f.file).name in wanted)
        for (platform, topic), n in sorted(counts.items()):
            print(f"{platform:10} {topic:18} {n}")
    print(f"{len(problems)} problem(s) in {', '.join(sorted(wanted))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
