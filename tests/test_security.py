"""Secrets stay secret, and dependencies are audited.

- The bot tokens never show in a repr, a str, a settings dump, a settings error, or in the
  error and logs when Telegram or Discord rejects them.
- No token-shaped string is in any file of the repository.
- scripts/audit_deps.py (run by scripts/test.sh before the tests) fails on known
  vulnerabilities with a fix, warns about the rest, and never fails for lack of network.

Elsewhere: tests/test_logs.py searches every log line of whole sessions (plain, JSON and
DEBUG) for planted tokens and question text; tests/test_dockerfile.py checks the image runs
as a non-root user and compose runs it with a read-only root filesystem.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import discord
import pydantic
import pytest
from pydantic import SecretStr

from bot.adapters import discord as discord_adapter
from bot.adapters import telegram as telegram_adapter
from bot.settings import Settings
from tests.standins.discord_api import DiscordStandIn
from tests.standins.telegram_api import TelegramStandIn

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent

# Built when the tests run, so that this file holds no token-shaped string for the repository scan to find.
TELEGRAM_TOKEN = "7" * 10 + ":" + "AAE" + "s3cretPart" * 3 + "Xy"  # bot id, colon, 35 characters
DISCORD_TOKEN = "M" + "TIz" * 8 + "." + "Gs3cRt" + "." + "s3cretPart" * 3 + "Xy"
WEBHOOK_SECRET = "hook-" + "s3cret" * 4
SECRETS = [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], DISCORD_TOKEN, DISCORD_TOKEN.rsplit(".", 1)[1], WEBHOOK_SECRET]

# What real tokens look like, standing alone as they do when pasted.
TELEGRAM_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])\d{8,10}:[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])")
DISCORD_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])[MN][A-Za-z0-9]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}"
                           r"(?![A-Za-z0-9_-])")


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def planted_settings(**changes: object) -> Settings:
    return Settings(_env_file=None, telegram_bot_token=TELEGRAM_TOKEN, discord_bot_token=DISCORD_TOKEN,
                    telegram_webhook_secret=WEBHOOK_SECRET, **changes)


# --- Settings ------------------------------------------------------------------------------------


def test_settings_never_show_a_token_in_repr_str_or_dumps():
    settings = planted_settings()
    for shown in (repr(settings), str(settings), f"{settings!r}", settings.model_dump(), settings.model_dump(mode="json"),
                  settings.model_dump_json(), repr(settings.telegram_bot_token), str(settings.discord_bot_token)):
        assert not leaked(str(shown)), shown
    assert settings.telegram_bot_token.get_secret_value() == TELEGRAM_TOKEN, "still there for the adapter to use"


def test_settings_read_from_the_environment_are_secret_too(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
    settings = Settings(_env_file=None)
    assert isinstance(settings.telegram_bot_token, SecretStr) and isinstance(settings.discord_bot_token, SecretStr)
    assert not leaked(repr(settings) + settings.model_dump_json())


def test_a_settings_error_does_not_quote_the_tokens():
    with pytest.raises(pydantic.ValidationError) as error:
        planted_settings(conversation_ttl_seconds=0)
    assert "conversation_ttl_seconds" in str(error.value)
    assert not leaked(str(error.value) + repr(error.value) + "".join(traceback.format_exception(error.value)))


# --- Tokens the platforms reject -----------------------------------------------------------------


class NoEngine:
    """Start-up fails at the token, before any question: no engine is needed."""

    feedback = None

    def platform_choices(self) -> list[tuple[str, str]]:
        return [("linkedin", "LinkedIn")]


async def test_a_token_telegram_rejects_is_in_neither_the_error_nor_the_logs(caplog):
    telegram = TelegramStandIn(token="1" * 10 + ":" + "R" * 35)  # the right token is another one
    await telegram.start()
    caplog.set_level(logging.DEBUG)
    try:
        settings = planted_settings(telegram_api_base_url=telegram.base_url)
        with pytest.raises(Exception) as error:
            await asyncio.wait_for(telegram_adapter.run_async(settings, NoEngine(), asyncio.Event()), 60)
    finally:
        await telegram.close()

    assert telegram.calls and telegram.calls[0].status == 401, "the stand-in refused the token"
    assert "TELEGRAM_BOT_TOKEN" in str(error.value), "the error says which setting to fix"
    assert not leaked("".join(traceback.format_exception(error.value)) + repr(error.value))
    assert not leaked("\n".join(logging.Formatter().format(record) for record in caplog.records))


async def test_a_token_discord_rejects_is_in_neither_the_error_nor_the_logs(caplog):
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    caplog.set_level(logging.DEBUG)
    try:
        async with DiscordStandIn(token="the-right-token") as discord_api:
            settings = planted_settings(discord_api_base_url=discord_api.api_url)
            with pytest.raises(discord.LoginFailure) as error:
                await asyncio.wait_for(discord_adapter.run_async(settings, NoEngine(), asyncio.Event()), 60)
            assert discord_api.calls and discord_api.calls[0].path == "/users/@me"
    finally:  # the adapter points discord.py (process-wide) at the stand-in; put it back
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway

    assert not leaked("".join(traceback.format_exception(error.value)) + repr(error.value))
    assert not leaked("\n".join(logging.Formatter().format(record) for record in caplog.records))


async def test_python_m_bot_telegram_with_a_rejected_token_says_so_without_showing_it(engine, tmp_path):
    # `engine` is requested so the index cache is built before the process starts.
    telegram = TelegramStandIn(token="1" * 10 + ":" + "R" * 35)
    await telegram.start()
    cleared = ("TELEGRAM_", "DISCORD_", "LOG_", "STATE_URL", "DATA_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)} | {
        "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "DEBUG",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_BASE_URL": telegram.base_url}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 600)
    finally:
        await telegram.close()

    output = stdout.decode() + stderr.decode()
    assert process.returncode == 2, output[-3000:]
    assert "rejected TELEGRAM_BOT_TOKEN" in output
    assert not leaked(output), "PTB quotes a rejected token in its error and logs it while starting"


# --- The repository ------------------------------------------------------------------------------


def repository_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def test_the_token_shapes_match_real_looking_tokens_and_nothing_else():
    assert TELEGRAM_SHAPE.fullmatch(TELEGRAM_TOKEN) and DISCORD_SHAPE.fullmatch(DISCORD_TOKEN)
    assert TELEGRAM_SHAPE.search(f"TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}\n")
    assert DISCORD_SHAPE.search(f'token = "{DISCORD_TOKEN}"')
    assert not TELEGRAM_SHAPE.search("TELEGRAM_BOT_TOKEN=123456:ABC...")  # the README's placeholder
    assert not TELEGRAM_SHAPE.search(TELEGRAM_TOKEN + "ab"), "longer than a token: not one"


def test_no_file_in_the_repository_holds_a_token():
    files = repository_files()
    assert len(files) > 50, "the scan sees the repository"
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for shape in (TELEGRAM_SHAPE, DISCORD_SHAPE):
            found += [f"{path.relative_to(ROOT)}: {match.group(0)[:12]}…" for match in shape.finditer(text)]
    assert not found, ("token-shaped strings (a test that needs one builds it at run time, like this file): "
                       f"{found}")


def test_env_files_with_tokens_are_never_committed():
    assert not [p for p in repository_files() if p.name == ".env" or p.name.startswith(".env.")]
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- pip-audit -----------------------------------------------------------------------------------


def audit_module():
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def package(name: str, *vulns: dict) -> dict:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


def test_the_audit_fails_on_a_vulnerability_that_has_a_fix():
    verdict = audit_module().judge(report(
        package("requests", {"id": "GHSA-xxxx", "fix_versions": ["2.32.4"], "aliases": ["CVE-2024-1"]}),
        package("numpy")))
    assert verdict.exit_status == 1
    assert verdict.errors == ["requests 1.0: GHSA-xxxx, CVE-2024-1 (fixed in 2.32.4)"]


def test_the_audit_warns_about_a_vulnerability_without_a_fix_but_passes():
    verdict = audit_module().judge(report(package("torch", {"id": "PYSEC-1", "fix_versions": [], "aliases": []})))
    assert verdict.exit_status == 0
    assert verdict.warnings == ["torch 1.0: PYSEC-1 (no fixed version yet)"]


@pytest.mark.parametrize("reply", ["unreachable", "nothing looked up"])
def test_the_audit_warns_but_passes_when_there_is_no_vulnerability_data(reply):
    module = audit_module()
    if reply == "unreachable":
        verdict = module.judge(None, "exit status 1: ConnectionError: Failed to resolve 'pypi.org'")
    else:  # what a registry that serves packages but not per-version vulnerability data gives
        skipped = {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited: numpy (2.4)"}
        editable = {"name": "privacy-answers-bot", "skip_reason": "distribution marked as editable"}
        verdict = module.judge(report(skipped, editable))
    assert verdict.exit_status == 0 and not verdict.errors
    [warning] = verdict.warnings
    assert "NOT audited" in warning


def test_the_audit_step_runs_before_the_tests_in_ci():
    steps = (ROOT / "scripts" / "test.sh").read_text().splitlines()
    audit = next(i for i, line in enumerate(steps) if "scripts/audit_deps.py" in line and not line.startswith("#"))
    setup = next(i for i, line in enumerate(steps) if "scripts/setup.sh" in line)
    tests = next(i for i, line in enumerate(steps) if "-m pytest" in line)
    assert setup < audit < tests
    assert "set -e" in (ROOT / "scripts" / "test.sh").read_text(), "a failing audit fails the run"
