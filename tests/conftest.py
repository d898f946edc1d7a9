"""Shared fixtures: one real engine (real model, real index) for the whole test session."""

from __future__ import annotations

import itertools

import pytest

from bot.engine import Engine
from bot.settings import Settings

_chat_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # _env_file=None: a developer's .env (tokens!) must never leak into the tests. A fresh data_dir:
    # the default SQLite state must not carry conversations over from an earlier run of the suite.
    return Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    return Engine.from_settings(settings)


@pytest.fixture
def chat_id() -> str:
    """A fresh chat for each test, so no conversation state carries over between tests."""
    return f"test-chat-{next(_chat_numbers)}"
