"""One typed settings object per process, read once from the environment (prefix ``KAKEHASHI_``).

Nothing reads the environment anywhere else: ``Settings`` is built by the entry point (the CLI or
a test) and passed down.  Unsafe production combinations are refused by :meth:`Settings.check`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Limits, named with their units.
MAX_MESSAGE_CHARS = 10_000
MAX_FRAME_BYTES = 64 * 1024
SEND_QUEUE_MAX = 256
RESUME_BUFFER_MAX = 2_000
HELLO_TIMEOUT_S = 10.0
HISTORY_PAGE_MAX = 200
BULK_ROOMS_MAX = 1_000
CSV_IMPORT_MAX_BYTES = 5 * 1024 * 1024
CSV_IMPORT_MAX_ROWS = 20_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAKEHASHI_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    redis_url: str | None = None  # None: in-process broker (one app process only)
    redis_prefix: str = "kakehashi"
    host: str = "127.0.0.1"
    port: int = 8000
    # Extra allowed websocket/CSRF origins besides the server's own (e.g. behind a proxy).
    allowed_origins: list[str] = Field(default_factory=list)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    session_ttl_hours: int = 12
    # Heartbeats: the server pings every ``ping_interval_s`` and drops a connection it has not
    # heard from in ``dead_after_s`` (a dead connection is noticed within 60 s by default).
    ping_interval_s: float = 20.0
    dead_after_s: float = 60.0
    log_level: str = "info"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kakehashi.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def check(self, *, processes: int = 1) -> None:
        """Refuse unsafe production defaults; raise ``ValueError`` with a sentence to act on."""
        if processes > 1 and self.is_sqlite:
            raise ValueError(
                "Several app processes need PostgreSQL (KAKEHASHI_DATABASE_URL); "
                "SQLite is for a single process."
            )
        if processes > 1 and not self.redis_url:
            raise ValueError(
                "Several app processes need Redis (KAKEHASHI_REDIS_URL) to share events."
            )
        if self.env == "production" and self.cookie_secure == "never":
            raise ValueError("KAKEHASHI_COOKIE_SECURE=never is refused in production.")
