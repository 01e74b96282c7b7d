"""Run ``kakehashi`` (``python -m chat``) as a real process against a test server's database."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from chat.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT_S = 60.0


@dataclass
class Done:
    code: int
    out: str
    err: str


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAKEHASHI_")}
    env["KAKEHASHI_DATABASE_URL"] = settings.effective_database_url
    env["KAKEHASHI_DATA_DIR"] = str(settings.data_dir)
    env["KAKEHASHI_REDIS_PREFIX"] = settings.redis_prefix
    if settings.redis_url:
        env["KAKEHASHI_REDIS_URL"] = settings.redis_url
    return env


async def kakehashi(settings: Settings, *args: str) -> Done:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat",
        *args,
        cwd=ROOT,
        env=cli_env(settings),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())
