#!/usr/bin/env python3
"""Audit the installed dependencies with pip-audit; fail only on what an upgrade would fix.

    .venv/bin/python scripts/audit_deps.py      # scripts/test.sh runs it before the tests

- A known vulnerability with a fixed version: listed, and the exit status is 1 — raise the
  pin in pyproject.toml to a fixed version.
- A known vulnerability with no fix yet: printed as a warning; nothing to upgrade to.
- No vulnerability data (the service unreachable, or it could look up none of the
  packages): a warning, exit status 0. A network failure is not a vulnerability, but the
  warning says plainly that nothing was audited.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

AUDIT_TIMEOUT = 300  # seconds for the whole audit: a hanging network must not hold up the tests
COMMAND = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable", "--format", "json",
           "--desc", "off", "--timeout", "15"]


@dataclass
class Verdict:
    exit_status: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def judge(report: dict | None, problem: str = "") -> Verdict:
    """Decide from pip-audit's JSON report (None when it produced none; `problem` says why)."""
    if report is None:
        return Verdict(0, warnings=[f"pip-audit could not check for vulnerabilities ({problem or 'no report'}); "
                                    "dependencies were NOT audited. Not failing the run: no network is not a vulnerability."])
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason") and "editable" not in d["skip_reason"]]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    verdict = Verdict(0)
    if skipped and not audited:
        verdict.warnings.append(
            f"the vulnerability service answered for none of the {len(skipped)} installed packages "
            f"(e.g. {skipped[0]['skip_reason']}); dependencies were NOT audited. Not failing the run: "
            "no vulnerability data is not a vulnerability.")
        return verdict
    for dependency in audited:
        for vulnerability in dependency.get("vulns", []):
            ids = ", ".join([vulnerability["id"], *vulnerability.get("aliases", [])])
            name = f"{dependency['name']} {dependency['version']}: {ids}"
            if vulnerability.get("fix_versions"):
                verdict.errors.append(f"{name} (fixed in {', '.join(vulnerability['fix_versions'])})")
            else:
                verdict.warnings.append(f"{name} (no fixed version yet)")
    if skipped:
        verdict.notes.append(f"{len(skipped)} package(s) could not be looked up: "
                             + ", ".join(d["name"] for d in skipped[:10]) + ("…" if len(skipped) > 10 else ""))
    verdict.notes.append(f"{len(audited)} package(s) audited")
    verdict.exit_status = 1 if verdict.errors else 0
    return verdict


def run_pip_audit() -> tuple[dict | None, str]:
    try:
        result = subprocess.run(COMMAND, capture_output=True, text=True, timeout=AUDIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {AUDIT_TIMEOUT} s"
    # pip-audit exits 1 when it finds something, and still prints its report: read the report, not the status.
    try:
        return json.loads(result.stdout), ""
    except json.JSONDecodeError:
        last_lines = [line for line in result.stderr.strip().splitlines() if line.strip()][-1:]
        return None, f"exit status {result.returncode}: {last_lines[0][:300] if last_lines else 'no output'}"


def main() -> int:
    report, problem = run_pip_audit()
    verdict = judge(report, problem)
    for line in verdict.notes:
        print(f"pip-audit: {line}")
    for line in verdict.warnings:
        print(f"pip-audit: WARNING: {line}")
    for line in verdict.errors:
        print(f"pip-audit: VULNERABLE: {line}")
    if verdict.errors:
        print("pip-audit: failing: upgrade these in pyproject.toml to a fixed version")
    elif not verdict.warnings:
        print("pip-audit: no known vulnerabilities")
    return verdict.exit_status


if __name__ == "__main__":
    sys.exit(main())
