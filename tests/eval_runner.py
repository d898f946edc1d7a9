"""Run the evaluation set (tests/eval/cases.yaml) through the engine and grade each case.

    .venv/bin/python tests/eval_runner.py [cases.yaml]   # print every failing case, then the score

tests/test_eval.py runs the same grading under pytest.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "eval" / "cases.yaml"
sys.path.insert(0, str(ROOT))

from bot.knowledge import quote_in_text  # noqa: E402
from bot.models import Answer  # noqa: E402


@dataclass
class Result:
    case_id: str
    passed: bool
    out_of_scope: bool
    problems: list[str] = field(default_factory=list)
    bad_citations: int = 0


def load_cases(path: Path = CASES) -> list[dict]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _question(turn: dict) -> str:
    if "ask_repeat" in turn:
        return turn["ask_repeat"]["text"] * turn["ask_repeat"]["times"]
    return turn["ask"]


def grade_turn(turn: dict, answer: Answer, sources: dict[str, str]) -> tuple[list[str], int]:
    problems = []
    body, text = answer.body.lower(), answer.text.lower()
    for item in turn.get("must", []):
        options = item if isinstance(item, list) else [item]
        if not any(option.lower() in body for option in options):
            problems.append(f"missing {options}")
    for item in turn.get("must_not", []):
        if item.lower() in text:
            problems.append(f"must not say {item!r}")
    if "abstain" in turn and answer.abstained != turn["abstain"]:
        problems.append(f"abstained={answer.abstained}, expected {turn['abstain']}")
    if turn.get("platform") and answer.platform != turn["platform"]:
        problems.append(f"platform={answer.platform}, expected {turn['platform']}")
    bad = sum(1 for c in answer.citations if not quote_in_text(c.quote, sources.get(c.source_id, "")))
    if bad:
        problems.append(f"{bad} citation(s) whose quote is not in the source")
    return problems, bad


async def run_case(engine, case: dict, sources: dict[str, str]) -> Result:
    turns = case.get("dialogue") or [case]
    chat_id = f"eval-{case['id']}"
    await engine.forget(chat_id)
    problems: list[str] = []
    bad_total = 0
    for number, turn in enumerate(turns, start=1):
        answer = await engine.answer(chat_id, _question(turn))
        turn_problems, bad = grade_turn(turn, answer, sources)
        bad_total += bad
        problems.extend(f"turn {number}: {p}" if len(turns) > 1 else p for p in turn_problems)
    out_of_scope = case["id"].startswith("oos-")
    return Result(case["id"], not problems, out_of_scope, problems, bad_total)


async def run_all(engine, path: Path = CASES) -> list[Result]:
    sources = {sid: s.text for sid, s in engine.knowledge.sources.items()}
    return [await run_case(engine, case, sources) for case in load_cases(path)]


def count_questions(cases: list[dict]) -> int:
    return sum(len(c.get("dialogue") or [c]) for c in cases)


def main() -> int:
    from bot.engine import Engine
    from bot.logs import setup_logging
    from bot.settings import Settings

    setup_logging("WARNING")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else CASES
    engine = Engine.from_settings(Settings(_env_file=None))
    results = asyncio.run(run_all(engine, path))
    for r in results:
        if not r.passed:
            print(f"FAIL {r.case_id}: {'; '.join(r.problems)}")
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} cases passed ({passed / len(results):.1%}), "
          f"{count_questions(load_cases(path))} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
