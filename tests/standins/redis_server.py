"""A throwaway redis-server on 127.0.0.1 for tests: a free port, its own directory, nothing saved to disk.

    server = RedisServer.find_or_explain(tmp_dir)  # fails in CI, skips locally, when redis-server is missing
    server.start(); server.url                      # redis://127.0.0.1:<port>/0
    server.stop(); server.start()                   # Redis going away and coming back, on the same port
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

INSTALL_HINT = ("redis-server is not installed. Install it with `sudo apt-get install redis-server` "
                "(Debian/Ubuntu), or run `bash scripts/setup.sh test` as root.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def find_or_explain(cls, directory: Path) -> RedisServer:
        """The Redis tests must run in CI, so a missing binary fails there; on a laptop it only skips."""
        binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                                 else None)
        if binary is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(INSTALL_HINT, pytrace=False)
            pytest.skip(INSTALL_HINT)
        return cls(binary, directory)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child process keeps it open
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
