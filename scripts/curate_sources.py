"""Copy the stored sources from ../shared/sources into knowledge/sources, once.

Each curated file keeps the original front matter and adds a stable `id` (the file
name without .md) and an `authority` rank following INDEX.md's order:
official (1) > regulator (2) > news / law firm (3) > advocacy (4) > blog / seed (5).
Page furniture that is not about the subject is stripped. Run it again only to
re-import; hand edits in knowledge/sources would be overwritten.

    python scripts/curate_sources.py ../shared/sources knowledge/sources
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

AUTHORITY_BY_KIND = {"official": 1, "regulator": 2, "news": 3, "advocacy": 4, "blog": 5}

# Lines that are page furniture rather than content (share prompts and the like).
FURNITURE = [
    re.compile(r"👉 SHARE this information with your network\. 👉 LEARN more in the FAQ \(link below\)\. "),
]


def curate(src: Path, dest_dir: Path) -> Path:
    text = src.read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    source_id = src.stem
    kind = meta["kind"]
    # Seed articles and vendor blogs sit at the bottom of INDEX.md's order whatever their `kind`.
    authority = 5 if source_id.startswith("seed-") else AUTHORITY_BY_KIND[kind]
    for pattern in FURNITURE:
        body = pattern.sub("", body)
    ordered = {"id": source_id, "authority": authority, **meta}
    dest = dest_dir / src.name
    dest.write_text(
        "---\n" + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=1000) + "---\n" + body.lstrip("\n"),
        encoding="utf-8",
    )
    return dest


def main() -> None:
    src_dir, dest_dir = Path(sys.argv[1]), Path(sys.argv[2])
    dest_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(src_dir.glob("*.md")):
        if path.name == "INDEX.md":
            continue
        print(curate(path, dest_dir))


if __name__ == "__main__":
    main()
