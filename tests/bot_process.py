"""`python -m bot ...` as a separate process, started the way a user or a service manager would.

The process runs in a temporary directory (so no developer `.env` is read), with its own
data directory, and writes its logs to a file the test can search afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180  # the process loads the model and the index before it connects anywhere
# Settings a developer's shell may carry that would change what the process does.
CLEARED_PREFIXES = ("TELEGRAM_", "DISCORD_", "LOG_", "METRICS_", "STATE_URL", "DATA_DIR")


def process_env(workdir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES)}
    return env | {"PYTHONPATH": str(ROOT), "DATA_DIR": str(workdir / "data"), "LOG_LEVEL": "INFO",
                  "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **settings}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BotProcess:
    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    async def until(self, condition: Awaitable[Any], what: str, timeout: float = START_TIMEOUT) -> Any:
        """Wait for `condition`, failing with the process's log if it exits or time runs out first."""
        waiting = asyncio.ensure_future(condition)
        exited = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if waiting not in done or waiting.exception() is not None:
            waiting.cancel()
            raise AssertionError(f"{what}: did not happen (exit status {self.process.returncode}); log:\n{self.log()}")
        return waiting.result()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)


@contextlib.asynccontextmanager
async def bot_process(args: list[str], env: dict[str, str], workdir: Path,
                      stdin: int | None = asyncio.subprocess.DEVNULL,
                      stdout: int | None = asyncio.subprocess.DEVNULL) -> AsyncIterator[BotProcess]:
    """Start `python -m bot *args`; on the way out, SIGTERM it if it is still running (then SIGKILL)."""
    log_path = workdir / f"stderr-{'-'.join(args) or 'serve'}.log"
    with log_path.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, cwd=workdir, env=env, stdin=stdin, stdout=stdout, stderr=err)
    running = BotProcess(process, log_path)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
