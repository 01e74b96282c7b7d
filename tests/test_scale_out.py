"""Several app processes: two real `kakehashi serve` processes on one database, sharing events
through Redis.  An event published by one reaches websocket clients of the other, and a
client that moves between processes resumes without loss or duplicate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from chat import accounts, audit, licenses
from chat.app import build_services, close_services
from chat.cli import listen
from chat.settings import Settings
from tests.backends import REDIS_URL
from tests.harness import PASSWORD, Ws, client_id


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    port: int  # the internet side's listener
    lgwan_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url_for(self, side: str) -> str:
        return f"ws://127.0.0.1:{self.lgwan_port if side == 'lgwan' else self.port}/ws"


async def start_app(settings: Settings) -> Proc:
    sock, lgwan_sock = listen("127.0.0.1", 0), listen("127.0.0.1", 0)
    port, lgwan_port = sock.getsockname()[1], lgwan_sock.getsockname()[1]
    sock.close()
    lgwan_sock.close()
    env = {
        **os.environ,
        "KAKEHASHI_DATABASE_URL": settings.database_url,
        "KAKEHASHI_REDIS_URL": REDIS_URL,
        "KAKEHASHI_REDIS_PREFIX": settings.redis_prefix,
        "KAKEHASHI_DATA_DIR": str(settings.data_dir),
        "KAKEHASHI_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat",
            "serve",
            "--port",
            str(port),
            "--lgwan-port",
            str(lgwan_port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return Proc(process, port, lgwan_port)
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError("app process exited")
            await asyncio.sleep(0.1)
    raise RuntimeError("app process did not become ready")


def stop_app(proc: Proc) -> None:
    if proc.process.poll() is None:
        os.killpg(proc.process.pid, signal.SIGTERM)
        try:
            proc.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait()


@pytest.fixture
async def two_apps(settings: Settings) -> AsyncIterator[tuple[Proc, Proc, dict[str, int]]]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = await build_services(settings)
    people: dict[str, int] = {}
    async with services.unit() as uow:
        org = await accounts.create_organisation(uow, "広域連合")
        await licenses.set_pool(uow, audit.SYSTEM, org.id, "internet", 2)
        for login in ("alice", "bob"):
            user = await accounts.create_user(
                uow,
                org.id,
                accounts.UserInput(login_id=login, display_name=login, password=PASSWORD),
            )
            people[login] = user.id
            change = licenses.Change()
            change.set(user.id, "internet", True)
            await licenses.apply(uow, audit.SYSTEM, org.id, change)
    await close_services(services)
    first = await start_app(settings)
    second = await start_app(settings)
    try:
        yield first, second, people
    finally:
        stop_app(first)
        stop_app(second)


async def login(url: str, login_id: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/api/auth/login", json={"login_id": login_id, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


async def test_events_cross_processes_through_redis(
    two_apps: tuple[Proc, Proc, dict[str, int]],
) -> None:
    first, second, people = two_apps
    alice_token = await login(first.url, "alice")
    bob_token = await login(second.url, "bob")
    auth = {"Authorization": f"Bearer {alice_token}"}
    async with httpx.AsyncClient(base_url=first.url, headers=auth) as alice:
        room = (await alice.post("/api/rooms/direct", json={"user_id": people["bob"]})).json()["id"]
        bob = await Ws.connect(second, bob_token)  # type: ignore[arg-type]
        alice_ws = await Ws.connect(first, alice_token)  # type: ignore[arg-type]
        for i in range(20):
            await alice_ws.send(
                {"type": "send", "room_id": room, "client_id": client_id(), "body": f"{i}"}
            )
        got = [int((await bob.event("message"))["data"]["message"]["body"]) for _ in range(20)]
        assert got == list(range(20))
        last = bob.seen[-1]["seq"]
        await bob.close()
        # bob moves to the other process while alice keeps writing: resume, no loss, no repeat
        for i in range(20, 25):
            r = await alice.post(
                f"/api/rooms/{room}/messages", json={"client_id": client_id(), "body": f"{i}"}
            )
            assert r.status_code == 201
        bob = await Ws.connect(first, bob_token, since={room: last})  # type: ignore[arg-type]
        replayed = [
            int(f["data"]["message"]["body"]) for f in bob.seen if f.get("event") == "message"
        ]
        assert replayed == list(range(20, 25))
        # revoking on one process closes the socket held by the other
        bob2 = await Ws.connect(second, bob_token)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            base_url=first.url, headers={"Authorization": f"Bearer {bob_token}"}
        ) as bob_http:
            assert (await bob_http.post("/api/auth/logout")).status_code == 200
        for ws in (bob, bob2):
            with pytest.raises(Exception) as info:
                while True:
                    await ws.recv(5)
            assert getattr(info.value, "rcvd", None) is not None
            assert info.value.rcvd.code == 4003  # type: ignore[attr-defined]
        await alice_ws.close()
