"""All configuration, read once from the environment or `.env` (pydantic-settings).

Tokens are SecretStr: they never appear in logs, reprs or exceptions.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Knowledge and index
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    index_cache_dir: Path = PROJECT_ROOT / ".cache" / "index"
    # Past this many vectors the exact faiss index gives way to an approximate one (HNSW): where exact
    # search passes ~1 ms, a tenth of the floor, on these 2 cores (scripts/bench_growth.py).
    approximate_index_threshold: int = 20_000

    # Conversation state
    conversation_ttl_seconds: int = Field(default=30 * 60, ge=1)
    max_question_chars: int = Field(default=2_000, ge=100)
    # Where conversations and feedback counts live (bot/state): a SQLite file under data_dir by default,
    # redis://host:port/db to share them between replicas, memory:// to keep nothing on disk.
    state_url: str = Field(default="sqlite:///state.db",
                           description="memory://, sqlite:///file.db (relative to data_dir) or redis://host:port/db")
    data_dir: Path = PROJECT_ROOT / ".data"

    # Logging: never message text unless explicitly asked for while debugging.
    log_level: str = "INFO"
    log_json: bool = False

    # Per-user rate limit shared by the chat front ends.
    rate_limit_messages: int = Field(default=8, ge=1)
    rate_limit_window_seconds: float = Field(default=10.0, gt=0)

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    telegram_webhook_secret: SecretStr | None = None

    # Discord
    discord_bot_token: SecretStr | None = None
    discord_guild_id: int | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"

    # Optional health/metrics endpoint; 127.0.0.1 unless a scraper outside the host (or container) needs it.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The one place configuration is read."""
    return Settings()
