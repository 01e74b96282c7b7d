"""`make test`: services check, ruff, mypy, then pytest on SQLite and on PostgreSQL + Redis.

PostgreSQL (127.0.0.1:5432, database ``test``) and Redis (127.0.0.1:6379) are expected to be
running; if they do not answer, this starts them with the commands this kind of machine uses.
Extra arguments go to pytest (e.g. ``make test ARGS=-k resume`` is not supported; run
``.venv/bin/python -m scripts.test -k resume``).

The two suites run at the same time on a machine with more than one CPU (each alone keeps
about one core busy: much of a test is waiting for a server, a browser or a database), their
lines prefixed with the backend's name; ``KAKEHASHI_TEST_SERIAL=1`` runs them one after the
other.  They share nothing: every test has its own SQLite file or PostgreSQL database, its
own Redis key prefix and ports the kernel picked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import IO

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def ensure_services() -> None:
    if not answers(PG):
        print("PostgreSQL does not answer; starting it", flush=True)
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if versions:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                check=False,
            )
    if not answers(REDIS):
        print("Redis does not answer; starting it", flush=True)
        if shutil.which("redis-server"):
            os.makedirs("/var/lib/redis", exist_ok=True)
            os.makedirs("/var/log/redis", exist_ok=True)
            subprocess.run(
                [
                    "redis-server",
                    "--daemonize",
                    "yes",
                    "--bind",
                    "127.0.0.1",
                    "-::1",
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    "/var/lib/redis",
                    "--logfile",
                    "/var/log/redis/ci.log",
                ],
                check=False,
            )
    for address, name in ((PG, "PostgreSQL"), (REDIS, "Redis")):
        for _ in range(60):
            if answers(address):
                break
            time.sleep(0.5)
        else:
            sys.exit(f"{name} at {address[0]}:{address[1]} does not answer; cannot run the suite")


def run(step: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
    print(f"\n==> {step}: {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(cmd, env={**os.environ, **(env or {})}, check=False)
    print(f"<== {step}: exit {result.returncode} in {time.monotonic() - started:.0f}s", flush=True)
    if result.returncode != 0:
        sys.exit(result.returncode)


def _relay(prefix: str, stream: IO[str]) -> None:
    for line in stream:
        sys.stdout.write(f"{prefix} | {line}")
        sys.stdout.flush()


def run_together(steps: list[tuple[str, str, list[str], dict[str, str]]]) -> None:
    """Run steps at once, each line of their output prefixed with the step's short name;
    fail (with the first failing step's exit code) once all have ended."""
    width = max(len(short) for short, *_ in steps)
    running = []
    for short, step, cmd, env in steps:
        print(f"\n==> {step}: {' '.join(cmd)}", flush=True)
        process = subprocess.Popen(
            cmd,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None
        relay = threading.Thread(target=_relay, args=(short.ljust(width), process.stdout))
        relay.start()
        running.append((step, process, relay, time.monotonic()))
    failed = 0
    for step, process, relay, started in running:
        code = process.wait()
        relay.join()
        print(f"<== {step}: exit {code} in {time.monotonic() - started:.0f}s", flush=True)
        failed = failed or code
    if failed:
        sys.exit(failed)


def main() -> None:
    bin_dir = os.path.dirname(sys.executable)
    extra = sys.argv[1:]
    ensure_services()
    run("ruff check", [f"{bin_dir}/ruff", "check", "."])
    run("ruff format", [f"{bin_dir}/ruff", "format", "--check", "."])
    run("mypy", [f"{bin_dir}/mypy"])
    suites = [
        (
            "sqlite",
            "pytest on SQLite (embedded default)",
            [f"{bin_dir}/pytest", *extra],
            {"KAKEHASHI_TEST_BACKEND": "sqlite"},
        ),
        (
            "postgres",
            "pytest on PostgreSQL + Redis (scale-out)",
            [f"{bin_dir}/pytest", *extra],
            {"KAKEHASHI_TEST_BACKEND": "postgres"},
        ),
    ]
    if os.environ.get("KAKEHASHI_TEST_SERIAL") == "1" or (os.cpu_count() or 1) < 2:
        for _short, step, cmd, env in suites:
            run(step, cmd, env)
    else:
        run_together(suites)


if __name__ == "__main__":
    main()
