"""One typed settings object per process, read once from the environment (prefix ``KAKEHASHI_``).

Nothing reads the environment anywhere else: ``Settings`` is built by the entry point (the CLI or
a test) and passed down.  Unsafe production combinations are refused by :meth:`Settings.check`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Limits, named with their units.
MAX_MESSAGE_CHARS = 10_000
MAX_FRAME_BYTES = 64 * 1024
SEND_QUEUE_MAX = 256
# A replay (a reconnect's catch-up) goes at the client's pace but fills the send queue only
# this far, so the frames that follow it (synced, pong, live events) still find room.
REPLAY_QUEUE_MAX = SEND_QUEUE_MAX // 2
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
    # Sides by listener: one port per side (see chat/sides.py); 0 turns the LGWAN listener off.
    port: int = 8000  # internet side
    lgwan_port: int = 8001
    # A connection whose listener is unknown (e.g. a socket handed over by a process manager).
    default_side: Literal["lgwan", "internet"] = "internet"
    # Behind reverse proxies: proxies whose side header / X-Forwarded-For are believed, and
    # source networks that decide the side by themselves (CIDR lists, JSON in the environment).
    trusted_proxies: list[str] = Field(default_factory=list)
    lgwan_networks: list[str] = Field(default_factory=list)
    internet_networks: list[str] = Field(default_factory=list)
    # Extra allowed websocket/CSRF origins besides the server's own (e.g. behind a proxy).
    allowed_origins: list[str] = Field(default_factory=list)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    session_ttl_hours: int = 12
    # Heartbeats: the server pings every ``ping_interval_s`` and drops a connection it has not
    # heard from in ``dead_after_s`` (a dead connection is noticed within 60 s by default).
    ping_interval_s: float = 20.0
    dead_after_s: float = 60.0
    # The app's and the web server's log level.
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    # Attachments (issue 5): where blobs live (a directory, file:// or s3://; empty: data_dir/
    # blobs), the sanitiser's job queue (memory:// in-process, or redis://… shared with
    # `kakehashi worker` processes; empty: redis_url if set, else memory://), the directory
    # shared with the workers (empty: data_dir/sanitizer) and how many jobs this process
    # sanitises at once itself (0: none, leave them to `kakehashi worker`; memory:// needs 1+).
    blob_url: str = ""
    # Object store credentials for an s3:// blob_url (never in the URL); unset: botocore's
    # usual chain (AWS_* variables, an instance role).
    blob_access_key_id: str | None = None
    blob_secret_access_key: SecretStr | None = None
    sanitizer_queue_url: str = ""
    sanitizer_dir: Path | None = None
    sanitizer_workers: int = 2
    sanitizer_timeout_s: float = 30.0

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kakehashi.db').resolve()}"

    @property
    def effective_blob_url(self) -> str:
        return self.blob_url or str((self.data_dir / "blobs").resolve())

    @property
    def effective_sanitizer_queue_url(self) -> str:
        return self.sanitizer_queue_url or self.redis_url or "memory://"

    @property
    def effective_sanitizer_dir(self) -> Path:
        return (self.sanitizer_dir or self.data_dir / "sanitizer").resolve()

    def listener_sides(self) -> list[tuple[int, Literal["lgwan", "internet"]]]:
        sides: list[tuple[int, Literal["lgwan", "internet"]]] = [(self.port, "internet")]
        if self.lgwan_port:
            sides.append((self.lgwan_port, "lgwan"))
        return sides

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
        if self.lgwan_port and self.lgwan_port == self.port:
            raise ValueError(
                "KAKEHASHI_PORT and KAKEHASHI_LGWAN_PORT must differ: each side has its own port."
            )
        for name in ("trusted_proxies", "lgwan_networks", "internet_networks"):
            for value in getattr(self, name):
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise ValueError(
                        f"KAKEHASHI_{name.upper()}: {value!r} is not an address or a network "
                        "(write e.g. 10.0.0.0/8)."
                    ) from None
        if self.effective_sanitizer_queue_url.startswith("memory://"):
            if processes > 1:
                raise ValueError(
                    "Several app processes need a shared sanitiser queue: "
                    "KAKEHASHI_SANITIZER_QUEUE_URL=redis://… and `kakehashi worker` processes."
                )
            if self.sanitizer_workers < 1:
                raise ValueError(
                    "KAKEHASHI_SANITIZER_QUEUE_URL=memory:// needs KAKEHASHI_SANITIZER_WORKERS "
                    "≥ 1: nothing else reads an in-process queue."
                )
        if self.env == "production" and self.cookie_secure == "never":
            raise ValueError("KAKEHASHI_COOKIE_SECURE=never is refused in production.")
