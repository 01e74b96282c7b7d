"""Real-time load bench: Kakehashi's websocket fan-out against a bare ``websockets.broadcast``
server, on this machine, over loopback.

    .venv/bin/python bench/realtime.py --quick     # about a minute
    .venv/bin/python bench/realtime.py             # the full run (about 10 minutes)

What it does, all in one invocation, every part in its own process:

1. seeds a fresh embedded-default data folder (SQLite + in-process broker) in a temporary
   directory: users sharing one precomputed argon2 hash, one session row per user (the token
   hashed with ``chat.auth.hash_token``), and group rooms of 2, 100 and 1,000 members created
   through ``chat.rooms.create_group``;
2. starts ``python -m chat serve`` on a free loopback port, then the ceiling — a bare
   ``websockets.asyncio.server`` that answers the same frames with ``broadcast()`` and no
   database — with the same clients and the same rates;
3. against each server: opens N idle connections from several client processes (hello,
   welcome, synced, answering the server's pings), holds them past a heartbeat, and reads the
   server's VmRSS before and after; then, for each room size, measures saturation
   (publishers keep a fixed number of messages in flight, released by their own echo) and a
   fixed-rate run at half of Kakehashi's saturation rate.  Every body carries its send time
   (CLOCK_MONOTONIC, one clock for the whole machine), so every receiver measures
   send→deliver latency; every receiver counts what it got, so lost = expected − received;
4. Kakehashi only (the ceiling keeps no history): a client reconnects with ``since = 0`` for
   a seeded room of 5,000 messages and is timed from its hello to ``synced`` while the
   server replays them (events/s), five times (median).

Targets (printed PASS/FAIL, never asserted): ≥ 15,000 idle connections in one app process at
≤ 30 KB each; a 1,000-member room at ≥ 0.6× the ceiling's deliveries/s; p99 ≤ 20 ms for a
100-member room at half load; zero messages lost.

The bench stops by itself: every phase is bounded, children are killed (process groups,
parent-death signal) on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve()

ROOM_SIZES = (2, 100, 1_000)
TARGET_IDLE_CONNECTIONS = 15_000
TARGET_KB_PER_CONNECTION = 30.0
TARGET_CEILING_RATIO = 0.6
TARGET_P99_MS = 20.0
NOFILE_WANTED = 65_536

SERVER_START_TIMEOUT_S = 90.0
SERVER_STOP_TIMEOUT_S = 15.0
WORKER_REPLY_TIMEOUT_S = 600.0
FLOOD_IN_FLIGHT = 32  # messages in flight per room during saturation, over all publishers
MAX_PUBLISHERS = 8
PASSWORD = "Bench-password-2026"
SESSION_TTL_DAYS = 2
HISTORY_MESSAGES = 5_000  # about 20 s to seed
HISTORY_BODY = "{}: 本日の窓口対応の記録です。午前は転入届、午後は証明書の交付が続きました。"
CATCH_UP_RUNS = 5


@dataclass(frozen=True)
class Profile:
    name: str
    idle: int
    hold_s: float
    duration_s: float
    repeats: int
    workers: int
    connect_concurrency: int  # per worker
    publishers: int = MAX_PUBLISHERS  # per room, at most
    in_flight: int = FLOOD_IN_FLIGHT  # per room during saturation, over all publishers


QUICK = Profile(
    "quick", idle=2_000, hold_s=3.0, duration_s=2.0, repeats=1, workers=2, connect_concurrency=16
)
FULL = Profile(
    "full", idle=15_000, hold_s=25.0, duration_s=5.0, repeats=3, workers=4, connect_concurrency=16
)


# -- seeding (runs in its own process: it imports the server's code) ---------------------------


async def _seed(users: int, out: Path) -> None:
    sys.path.insert(0, str(REPO))
    from datetime import timedelta

    from sqlalchemy import insert, select

    from chat import messages, rooms
    from chat.app import build_services, close_services
    from chat.auth import Principal, hash_token
    from chat.cli import prepare
    from chat.models import AuthSession, Organisation, User, utcnow
    from chat.passwords import hash_password
    from chat.settings import Settings

    settings = Settings()
    await prepare(settings, quiet=True)
    services = await build_services(settings)
    try:
        password_hash = await hash_password(PASSWORD)  # one hash for every user: seeding speed
        now = utcnow()
        tokens: dict[int, str] = {}
        async with services.db.session() as s:
            org_id = await s.scalar(select(Organisation.id).order_by(Organisation.id))
            await s.execute(
                insert(User),
                [
                    {
                        "org_id": org_id,
                        "login_id": f"bench{i:05d}",
                        "display_name": f"負荷試験{i:05d}",
                        "kana": "ふかしけん",
                        "role": "member",
                        "password_hash": password_hash,
                    }
                    for i in range(1, users + 1)
                ],
            )
            rows = await s.execute(
                select(User.login_id, User.id).where(User.login_id.like("bench%"))
            )
            user_ids = {int(login[5:]): uid for login, uid in rows.all()}
            sessions = []
            for idx, uid in user_ids.items():
                tokens[idx] = secrets.token_urlsafe(32)
                sessions.append(
                    {
                        "user_id": uid,
                        "token_hash": hash_token(tokens[idx]),
                        "created_at": now,
                        "expires_at": now + timedelta(days=SESSION_TTL_DAYS),
                        "user_agent": "bench/realtime.py",
                    }
                )
            await s.execute(insert(AuthSession), sessions)
        room_ids: dict[int, int] = {}
        for size in ROOM_SIZES:
            async with services.unit() as uow:
                creator = await uow.session.get(User, user_ids[1])
                assert creator is not None
                room = await rooms.create_group(
                    uow,
                    Principal(creator, 0, "internet"),
                    f"負荷試験 {size}人",
                    [user_ids[i] for i in range(2, size + 1)],
                )
                room_ids[size] = room.id
        # A history to replay: a two-member room with HISTORY_MESSAGES messages, sent through
        # the domain as the app would (events, sequence numbers, search index), in one unit.
        async with services.unit() as uow:
            creator = await uow.session.get(User, user_ids[1])
            assert creator is not None
            author = Principal(creator, 0, "internet")
            room = await rooms.create_group(uow, author, "履歴", [user_ids[2]])
            for i in range(HISTORY_MESSAGES):
                await messages.send_message(
                    uow, author, room.id, client_id=f"history-{i}", body=HISTORY_BODY.format(i)
                )
            history_room = room.id
    finally:
        await close_services(services)
    world = {
        "tokens": {str(k): v for k, v in tokens.items()},
        "user_ids": {str(k): v for k, v in user_ids.items()},
        "rooms": {str(size): room_id for size, room_id in room_ids.items()},
        "history_room": history_room,
    }
    out.write_text(json.dumps(world))


# -- the ceiling: a bare websockets server with broadcast(), no database -----------------------


async def _ceiling(port: int, world_path: Path) -> None:
    from datetime import UTC, datetime

    from websockets.asyncio.server import ServerConnection, broadcast, serve

    world = json.loads(world_path.read_text())
    by_token = {token: int(idx) for idx, token in world["tokens"].items()}
    user_ids = {int(k): v for k, v in world["user_ids"].items()}
    room_of_size = {int(size): room_id for size, room_id in world["rooms"].items()}
    rooms_of: dict[int, list[int]] = {}
    for size, room_id in room_of_size.items():
        for idx in range(1, size + 1):
            rooms_of.setdefault(idx, []).append(room_id)
    members: dict[int, set[ServerConnection]] = {
        room_id: set() for room_id in room_of_size.values()
    }
    seqs = dict.fromkeys(room_of_size.values(), 0)
    next_id = 0

    def encode(frame: dict[str, Any]) -> str:
        return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))

    async def handler(ws: ServerConnection) -> None:
        nonlocal next_id
        hello = json.loads(await ws.recv())
        idx = by_token.get(hello.get("token"))
        if idx is None:
            await ws.close(4001, "not_authenticated")
            return
        uid = user_ids[idx]
        await ws.send(encode({"type": "welcome", "user": {"id": uid}, "heartbeat_s": 20}))
        mine = rooms_of.get(idx, [])
        for room_id in mine:
            members[room_id].add(ws)
        await ws.send(encode({"type": "synced", "rooms": {str(r): seqs[r] for r in mine}}))
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame.get("type") != "send":
                    continue
                room_id = frame.get("room_id")
                if room_id not in mine:
                    await ws.send(encode({"type": "error", "code": "not_a_member"}))
                    continue
                seqs[room_id] += 1
                next_id += 1
                at = datetime.now(UTC).isoformat()
                message = {
                    "id": next_id,
                    "room_id": room_id,
                    "seq": seqs[room_id],
                    "sender_id": uid,
                    "sender_name": f"負荷試験{idx:05d}",
                    "client_id": frame["client_id"],
                    "body": frame["body"],
                    "recalled": False,
                    "reply_to_id": None,
                    "mention_all": False,
                    "mentions": [],
                    "created_at": at,
                    "edited_at": None,
                }
                event = {
                    "type": "event",
                    "room_id": room_id,
                    "seq": seqs[room_id],
                    "event": "message",
                    "data": {"message": message},
                    "at": at,
                }
                broadcast(members[room_id], encode(event))
                ack = {
                    "type": "ack",
                    "client_id": frame["client_id"],
                    "room_id": room_id,
                    "message_id": next_id,
                    "seq": seqs[room_id],
                }
                await ws.send(encode(ack))
        finally:
            for room_id in mine:
                members[room_id].discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=1 << 20, backlog=4096):
        await asyncio.Future()


def _run_loop(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# -- children --------------------------------------------------------------------------------


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (max(hard, NOFILE_WANTED), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_preexec() -> None:
    os.setpgrp()
    from _realtime_client import die_with_parent

    die_with_parent()


class Children:
    """Every process the bench started; all of them are stopped on the way out."""

    def __init__(self) -> None:
        self.servers: list[subprocess.Popen[bytes]] = []
        self.workers: list[multiprocessing.process.BaseProcess] = []

    def spawn(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_preexec,  # setpgrp + parent-death signal
            )
        self.servers.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.servers:
            self.servers.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.servers):
            self.stop(proc)
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()
        for worker in self.workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()


def child_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAKEHASHI_DATA_DIR": str(data_dir),
            "KAKEHASHI_LOG_LEVEL": "warning",
            "KAKEHASHI_ENV": "development",
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        }
    )
    return env


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, path: str | None) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{tail(log)}")
        try:
            if path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            else:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200:
                        return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not start within {SERVER_START_TIMEOUT_S:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def server_gauge(port: int, name: str) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    return None


class Workers:
    """The load-generator processes; user ``i`` lives in worker ``(i - 1) % n``."""

    def __init__(self, children: Children, n: int, tokens: dict[int, str]) -> None:
        from _realtime_client import main as worker_main

        ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.pipes: list[Connection] = []
        for w in range(n):
            parent, child = ctx.Pipe()
            mine = {i: t for i, t in tokens.items() if (i - 1) % n == w}
            proc = ctx.Process(target=worker_main, args=(child, mine), name=f"bench-client-{w}")
            proc.start()
            child.close()
            children.workers.append(proc)
            self.pipes.append(parent)

    def owner(self, idx: int) -> int:
        return (idx - 1) % self.n

    def split(self, indexes: Sequence[int]) -> list[list[int]]:
        parts: list[list[int]] = [[] for _ in range(self.n)]
        for i in indexes:
            parts[self.owner(i)].append(i)
        return parts

    def call(self, command: str, args: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        for pipe, a in zip(self.pipes, args, strict=True):
            pipe.send((command, a))
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(WORKER_REPLY_TIMEOUT_S):
                raise RuntimeError(f"a client process did not answer {command!r}")
            replies.append(pipe.recv())
        return replies

    def all(self, command: str, **args: Any) -> list[dict[str, Any]]:
        return self.call(command, [args] * self.n)

    def exit(self) -> None:
        with contextlib.suppress(Exception):
            self.all("exit")


# -- measurements ----------------------------------------------------------------------------


@dataclass
class Run:
    sent: int = 0
    expected: int = 0
    received: int = 0
    duplicates: int = 0
    errors: int = 0
    stalled: int = 0
    seconds: float = 0.0
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def deliveries_per_s(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


@dataclass
class Idle:
    wanted: int
    held: int
    server_count: float | None
    rss_before_kb: int
    rss_after_kb: int
    connect_s: float
    failed: int

    @property
    def kb_per_connection(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / self.held if self.held else float("nan")


@dataclass
class RoomResult:
    saturation: list[Run]
    half: list[Run]
    half_rate: float

    def median(self, runs: list[Run], fn: Any) -> float:
        return statistics.median(fn(r) for r in runs)


@dataclass
class CatchUp:
    events: int
    seconds: float
    megabytes: float


@dataclass
class ServerResult:
    name: str
    idle: Idle | None = None
    rooms: dict[int, RoomResult] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    catch_up: list[CatchUp] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_idle(
    workers: Workers,
    url: str,
    pid: int,
    port: int | None,
    profile: Profile,
    compression: str | None,
) -> Idle:
    before = rss_kb(pid)
    parts = workers.split(range(1, profile.idle + 1))
    started = time.monotonic()
    replies = workers.call(
        "connect",
        [
            {
                "url": url,
                "indexes": p,
                "concurrency": profile.connect_concurrency,
                "compression": compression,
            }
            for p in parts
        ],
    )
    connect_s = time.monotonic() - started
    failed = sum(r["failed"] for r in replies)
    errors = [e for r in replies for e in r["errors"]]
    log(
        f"  {sum(r['open'] for r in replies)} connected in {connect_s:.1f} s"
        f" ({failed} failed{': ' + errors[0] if errors else ''}); holding {profile.hold_s:.0f} s"
    )
    time.sleep(profile.hold_s)
    held = sum(r["open"] for r in workers.all("status"))
    after = rss_kb(pid)
    server_count = server_gauge(port, "kakehashi_ws_connections") if port else None
    workers.all("close", indexes=None)
    return Idle(profile.idle, held, server_count, before, after, connect_s, failed)


def measure_run(
    workers: Workers,
    tag: str,
    room_id: int,
    size: int,
    *,
    rate: float,
    profile: Profile,
) -> Run:
    """One run in one room: fixed ``rate`` msg/s in total, or flood when ``rate`` is 0."""
    publishers = list(range(1, min(size, profile.publishers) + 1))
    window = 0 if rate else max(1, profile.in_flight // len(publishers))
    workers.all("arm", tag=tag)
    start_at = time.monotonic() + 0.3
    pub_parts: list[list[tuple[int, float]]] = [[] for _ in range(workers.n)]
    for k, idx in enumerate(publishers):
        pub_parts[workers.owner(idx)].append((idx, k / len(publishers)))
    replies = workers.call(
        "publish",
        [
            {
                "tag": tag,
                "room_id": room_id,
                "publishers": p,
                "rate_per_publisher": rate / len(publishers),
                "window": window,
                "start_at": start_at,
                "duration_s": profile.duration_s,
            }
            for p in pub_parts
        ],
    )
    sent = sum(r["sent"] for r in replies)
    members = workers.split(range(1, size + 1))
    drain = max(5.0, profile.duration_s)
    got = workers.call(
        "collect", [{"expected": sent * len(m), "timeout_s": drain} for m in members]
    )
    run = Run(
        sent=sent,
        expected=sent * size,
        stalled=sum(r["stalled"] for r in replies),
        received=sum(g["received"] for g in got),
        duplicates=sum(g["duplicates"] for g in got),
        errors=sum(g["errors"] for g in got),
    )
    last_ns = max((g["last_ns"] for g in got), default=0)
    run.seconds = max(1e-9, last_ns / 1e9 - start_at) if last_ns else 0.0
    for g in got:
        run.latencies_ns.frombytes(g["latencies"])
    return run


def measure_rooms(
    workers: Workers,
    result: ServerResult,
    rooms: dict[int, int],
    url: str,
    profile: Profile,
    compression: str | None,
    half_rates: dict[int, float] | None,
) -> None:
    biggest = max(rooms)
    replies = workers.call(
        "connect",
        [
            {
                "url": url,
                "indexes": p,
                "concurrency": profile.connect_concurrency,
                "compression": compression,
            }
            for p in workers.split(range(1, biggest + 1))
        ],
    )
    opened = sum(r["open"] for r in replies)
    if opened < biggest:
        log(f"  only {opened} of {biggest} room members connected")
    prefix = result.name[0]
    for size, room_id in sorted(rooms.items()):
        saturation = []
        for r in range(profile.repeats):
            run = measure_run(
                workers, f"{prefix}{size}s{r}", room_id, size, rate=0, profile=profile
            )
            saturation.append(run)
            log(
                f"  room {size:>5}: saturation {run.messages_per_s:8.1f} msg/s"
                f" {run.deliveries_per_s:10.0f} deliveries/s  lost {run.lost}"
            )
        if half_rates is None:
            rate = 0.5 * statistics.median(r.messages_per_s for r in saturation)
        else:
            rate = half_rates[size]
        half = []
        for r in range(profile.repeats):
            run = measure_run(
                workers, f"{prefix}{size}h{r}", room_id, size, rate=rate, profile=profile
            )
            half.append(run)
            log(
                f"  room {size:>5}: {rate:8.1f} msg/s  {run.deliveries_per_s:10.0f} deliveries/s"
                f"  p50 {run.percentile_ms(0.5):6.2f} ms  p99 {run.percentile_ms(0.99):6.2f} ms"
                f"  lost {run.lost}"
            )
        result.rooms[size] = RoomResult(saturation, half, rate)
    status = workers.all("status")
    for s in status:
        for code, count in s["dropped"].items():
            result.dropped[code] = result.dropped.get(code, 0) + count
    workers.all("close", indexes=None)


async def _catch_up_once(url: str, token: str, room_id: int) -> CatchUp:
    """A client reconnecting with ``since = 0`` for one room: hello → every event replayed →
    synced, timed from the hello."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=2**22, compression=None, open_timeout=30) as ws:
        started = time.monotonic()
        await ws.send(json.dumps({"type": "hello", "token": token, "since": {str(room_id): 0}}))
        events, size = 0, 0
        while True:
            raw = await asyncio.wait_for(ws.recv(), WORKER_REPLY_TIMEOUT_S)
            size += len(raw)
            frame = json.loads(raw)
            if frame.get("type") == "event" and frame.get("room_id") == room_id:
                events += 1
            elif frame.get("type") == "synced":
                return CatchUp(events, time.monotonic() - started, size / 1e6)
            elif frame.get("type") == "error":
                raise RuntimeError(f"catch-up refused: {frame}")


def measure_catch_up(result: ServerResult, url: str, token: str, room_id: int) -> None:
    """The room's whole history replayed to one reconnecting client, ``CATCH_UP_RUNS`` times."""
    for _ in range(CATCH_UP_RUNS):
        run = asyncio.run(_catch_up_once(url, token, room_id))
        result.catch_up.append(run)
        log(
            f"  catch-up: {run.events:,} events ({run.megabytes:.1f} MB) in {run.seconds:.2f} s,"
            f" {run.events / run.seconds:,.0f} events/s"
        )


# -- the report ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float | None, ceiling: float | None) -> str:
    if not ours or not ceiling or ours != ours or ceiling != ceiling:
        return "—"
    return f"{ours / ceiling:.2f}×"


def report(ours: ServerResult, ceiling: ServerResult | None, profile: Profile, args: Any) -> str:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        label: str,
        a: float | None,
        b: float | None,
        digits: int = 0,
        target: str = "",
        verdict: bool | None = None,
    ) -> None:
        rows.append(
            (
                label,
                _fmt(a, digits),
                _fmt(b, digits),
                _ratio(a, b),
                target,
                "" if verdict is None else ("PASS" if verdict else "FAIL"),
            )
        )

    idle_c = ceiling.idle if ceiling else None
    if ours.idle is not None:
        i = ours.idle
        row(
            "idle connections held",
            i.held,
            idle_c.held if idle_c else None,
            0,
            f"≥ {TARGET_IDLE_CONNECTIONS:,}",
            i.held >= TARGET_IDLE_CONNECTIONS,
        )
        row("  connect time (s)", i.connect_s, idle_c.connect_s if idle_c else None, 1)
        row(
            "  memory per idle connection (KB)",
            i.kb_per_connection,
            idle_c.kb_per_connection if idle_c else None,
            1,
            f"≤ {TARGET_KB_PER_CONNECTION:.0f} KB",
            i.kb_per_connection <= TARGET_KB_PER_CONNECTION,
        )
    lost_total = 0
    for size, r in sorted(ours.rooms.items()):
        c = ceiling.rooms.get(size) if ceiling else None

        def med(rr: RoomResult | None, runs: str, fn: Any) -> float | None:
            return rr.median(getattr(rr, runs), fn) if rr is not None else None

        sat_a = med(r, "saturation", lambda x: x.deliveries_per_s)
        sat_b = med(c, "saturation", lambda x: x.deliveries_per_s)
        if size == max(ROOM_SIZES):
            ratio_ok = bool(sat_a and sat_b and sat_a / sat_b >= TARGET_CEILING_RATIO)
            row(
                f"room {size:,}: saturation deliveries/s",
                sat_a,
                sat_b,
                0,
                f"≥ {TARGET_CEILING_RATIO}× ceiling",
                ratio_ok if sat_b else None,
            )
        else:
            row(f"room {size:,}: saturation deliveries/s", sat_a, sat_b)
        row(
            "  saturation messages/s",
            med(r, "saturation", lambda x: x.messages_per_s),
            med(c, "saturation", lambda x: x.messages_per_s),
            1,
        )
        row(
            f"  half load {r.half_rate:,.1f} msg/s: deliveries/s",
            med(r, "half", lambda x: x.deliveries_per_s),
            med(c, "half", lambda x: x.deliveries_per_s),
        )
        row(
            "  half load p50 (ms)",
            med(r, "half", lambda x: x.percentile_ms(0.5)),
            med(c, "half", lambda x: x.percentile_ms(0.5)),
            2,
        )
        p99 = med(r, "half", lambda x: x.percentile_ms(0.99))
        if size == 100:
            row(
                "  half load p99 (ms)",
                p99,
                med(c, "half", lambda x: x.percentile_ms(0.99)),
                2,
                f"≤ {TARGET_P99_MS:.0f} ms",
                p99 is not None and p99 <= TARGET_P99_MS,
            )
        else:
            row("  half load p99 (ms)", p99, med(c, "half", lambda x: x.percentile_ms(0.99)), 2)
        lost_a = sum(x.lost + x.duplicates for x in r.saturation + r.half)
        lost_b = sum(x.lost + x.duplicates for x in c.saturation + c.half) if c else None
        lost_total += lost_a
        row("  lost + duplicated (all runs)", lost_a, lost_b)
    if ours.rooms:
        row("messages lost, all rooms and runs", lost_total, None, 0, "0", lost_total == 0)
    if ours.catch_up:
        runs = ours.catch_up
        row(
            "catch-up: events replayed/s",
            statistics.median(r.events / r.seconds for r in runs),
            None,
        )
        row("  events replayed", statistics.median(r.events for r in runs), None)
        row("  seconds to synced", statistics.median(r.seconds for r in runs), None, 2)

    head = ("", "kakehashi", "ceiling", "ratio", "target", "")
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(6)]
    lines = []
    for r in [head, *rows]:
        cells = [r[0].ljust(widths[0])] + [r[k].rjust(widths[k]) for k in range(1, 4)]
        cells += [r[4].ljust(widths[4]), r[5]]
        lines.append("  ".join(cells).rstrip())
    import websockets

    cpu = os.cpu_count()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    header = [
        f"Kakehashi realtime bench — profile {profile.name}: {profile.idle:,} idle connections,"
        f" {profile.duration_s:.0f} s runs × {profile.repeats} (medians),"
        f" {profile.workers} client processes",
        f"{platform.node()}: {cpu} CPUs, {mem_gib:.0f} GiB, Linux {platform.release()},"
        f" Python {platform.python_version()}, websockets {websockets.__version__},"
        f" compression {args.compression or 'off'}",
    ]
    notes = []
    if ours.dropped or (ceiling and ceiling.dropped):
        notes.append(
            f"connections closed by the server during the room runs: kakehashi {ours.dropped},"
            f" ceiling {ceiling.dropped if ceiling else {}}"
        )
    notes.append(
        "Noise: server, ceiling and client processes share the same cores; latency includes the"
        " client's own scheduling delay and runs vary by ±10-20 % from one invocation to the"
        " next. Saturation = publishers keep"
        f" {profile.in_flight} messages in flight (released by their own echo); half load ="
        " fixed rate at half of Kakehashi's saturation messages/s, the same rate for both."
    )
    return "\n".join([*header, "", *lines, "", *notes])


# -- main ------------------------------------------------------------------------------------


def run_bench(args: argparse.Namespace, profile: Profile, children: Children) -> str:
    nofile = raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="kakehashi-bench-"))
    log(f"data in {tmp}; RLIMIT_NOFILE {nofile}")
    data_dir = tmp / "data"
    env = child_env(data_dir)
    world_path = tmp / "world.json"
    users = max(profile.idle, max(ROOM_SIZES))
    log(f"seeding {users:,} users, sessions and rooms of {', '.join(map(str, ROOM_SIZES))}")
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, str(BENCH), "seed", "--users", str(users), "--out", str(world_path)],
            env=env,
            cwd=REPO,
            check=True,
        )
    except BaseException:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"  seeded in {time.monotonic() - started:.1f} s")
    world = json.loads(world_path.read_text())
    tokens = {int(k): v for k, v in world["tokens"].items()}
    rooms = {int(k): v for k, v in world["rooms"].items()}
    if args.sizes:
        wanted = {int(x) for x in args.sizes.split(",")}
        rooms = {size: room_id for size, room_id in rooms.items() if size in wanted}
    workers = Workers(children, profile.workers, tokens)
    compression = "deflate" if args.compression == "deflate" else None
    try:
        port = free_port()
        log(f"starting kakehashi (python -m chat serve) on 127.0.0.1:{port}")
        server_log = tmp / "kakehashi.log"
        server = children.spawn(
            [sys.executable, "-m", "chat", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            server_log,
        )
        wait_listening(server, port, server_log, "/healthz")
        ours = ServerResult("kakehashi")
        url = f"ws://127.0.0.1:{port}/ws"
        if profile.idle:
            log(f"kakehashi: {profile.idle:,} idle connections")
            ours.idle = measure_idle(workers, url, server.pid, port, profile, compression)
        if not args.idle_only:
            log("kakehashi: rooms")
            measure_rooms(workers, ours, rooms, url, profile, compression, None)
            log(f"kakehashi: catch-up of {HISTORY_MESSAGES:,} messages")
            measure_catch_up(ours, url, tokens[2], world["history_room"])
        if args.profile_server:
            log(f"server pid {server.pid} kept for profiling; press Enter to go on")
            input()
        children.stop(server)

        ceiling = None
        if not args.no_ceiling:
            port = free_port()
            log(f"starting the ceiling (bare websockets.broadcast) on 127.0.0.1:{port}")
            ceiling_log = tmp / "ceiling.log"
            proc = children.spawn(
                [
                    sys.executable,
                    str(BENCH),
                    "ceiling",
                    "--port",
                    str(port),
                    "--world",
                    str(world_path),
                ],
                env,
                ceiling_log,
            )
            wait_listening(proc, port, ceiling_log, None)
            ceiling = ServerResult("ceiling")
            url = f"ws://127.0.0.1:{port}/"
            if profile.idle:
                log(f"ceiling: {profile.idle:,} idle connections")
                ceiling.idle = measure_idle(workers, url, proc.pid, None, profile, compression)
            if not args.idle_only:
                log("ceiling: rooms")
                half = {size: r.half_rate for size, r in ours.rooms.items()}
                measure_rooms(workers, ceiling, rooms, url, profile, compression, half)
            children.stop(proc)
    finally:
        workers.exit()
        children.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(ours, ceiling, profile, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    seed = sub.add_parser("seed", help=argparse.SUPPRESS)
    seed.add_argument("--users", type=int, required=True)
    seed.add_argument("--out", type=Path, required=True)
    ceil = sub.add_parser("ceiling", help=argparse.SUPPRESS)
    ceil.add_argument("--port", type=int, required=True)
    ceil.add_argument("--world", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="small and short (about a minute)")
    parser.add_argument("--idle", type=int, help="idle connections to open (0 skips the phase)")
    parser.add_argument("--duration", type=float, help="seconds per publishing run")
    parser.add_argument("--repeats", type=int, help="runs per measurement (medians)")
    parser.add_argument("--workers", type=int, help="client processes")
    parser.add_argument(
        "--publishers", type=int, help=f"publishers per room (default {MAX_PUBLISHERS})"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        help=f"messages in flight at saturation (default {FLOOD_IN_FLIGHT})",
    )
    parser.add_argument("--sizes", help="room sizes to run, e.g. 2,100 (default: all)")
    parser.add_argument(
        "--compression",
        choices=["off", "deflate"],
        default="off",
        help="offer permessage-deflate like browsers do (default: off)",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling server")
    parser.add_argument(
        "--idle-only", action="store_true", help="only the idle connections (memory), no rooms"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument(
        "--profile-server",
        action="store_true",
        help="pause before stopping the server (attach py-spy)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "seed":
        asyncio.run(_seed(args.users, args.out))
        return 0
    if args.cmd == "ceiling":
        from _realtime_client import die_with_parent

        die_with_parent()
        _run_loop(_ceiling(args.port, args.world))
        return 0

    profile = QUICK if args.quick else FULL
    overrides = {
        k: v
        for k, v in {
            "idle": args.idle,
            "duration_s": args.duration,
            "repeats": args.repeats,
            "workers": args.workers,
            "publishers": args.publishers,
            "in_flight": args.in_flight,
        }.items()
        if v is not None
    }
    profile = replace(profile, **overrides)
    children = Children()
    try:
        text = run_bench(args, profile, children)
    except KeyboardInterrupt:
        log("interrupted; stopping children")
        return 130
    finally:
        children.stop_all()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
