"""A real uvicorn server on a free port, real HTTP and websocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from chat import accounts, audit, licenses
from chat.app import build_services, close_services, create_app
from chat.cli import listen, uvicorn_config
from chat.models import User
from chat.services import Services
from chat.settings import Settings

PASSWORD = "Kakehashi-test-2026"


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0  # the internet side's listener
        self.lgwan_port = 0

    def port_of(self, side: str) -> int:
        return self.lgwan_port if side == "lgwan" else self.port

    def url_for(self, side: str) -> str:
        return f"http://127.0.0.1:{self.port_of(side)}"

    def ws_url_for(self, side: str) -> str:
        return f"ws://127.0.0.1:{self.port_of(side)}/ws"

    @property
    def url(self) -> str:
        return self.url_for("internet")

    @property
    def ws_url(self) -> str:
        return self.ws_url_for("internet")

    async def start(self) -> None:
        self.services = await build_services(self.settings)
        await self.services.hub.start()
        # Two listeners, one per side, as `kakehashi serve` has.
        internet, lgwan = listen("127.0.0.1", 0), listen("127.0.0.1", 0)
        self.port, self.lgwan_port = internet.getsockname()[1], lgwan.getsockname()[1]
        self.settings.port, self.settings.lgwan_port = self.port, self.lgwan_port
        app = create_app(self.settings, services=self.services)
        self._server = uvicorn.Server(uvicorn_config(self.settings, app, log_level="warning"))
        self._task = asyncio.create_task(self._server.serve(sockets=[internet, lgwan]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.services is not None:
            await close_services(self.services)


@dataclass
class Person:
    id: int
    login_id: str
    display_name: str
    side: str = "internet"  # the side this person's client signs in on
    token: str = ""
    http: httpx.AsyncClient | None = None

    @property
    def api(self) -> httpx.AsyncClient:
        assert self.http is not None
        return self.http


@dataclass
class World:
    server: Server
    org_id: int
    people: dict[str, Person] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    async def add_person(
        self,
        login_id: str,
        display_name: str,
        *,
        role: str = "member",
        sign_in: bool = True,
        side: str = "internet",
        sides: tuple[str, ...] = ("lgwan", "internet"),
        department_id: int | None = None,
    ) -> Person:
        """A user holding the licenses of ``sides``, signed in on ``side``."""
        services = self.server.services
        assert services is not None
        async with services.unit() as uow:
            user = await accounts.create_user(
                uow,
                self.org_id,
                accounts.UserInput(
                    login_id=login_id,
                    display_name=display_name,
                    role=role,
                    password=PASSWORD,
                    department_id=department_id,
                ),
            )
            change = licenses.Change()
            for s in sides:
                change.set(user.id, s, True)
            await licenses.apply(uow, audit.SYSTEM, self.org_id, change)
        person = Person(user.id, login_id, display_name, side)
        if sign_in:
            await self.sign_in(person)
        self.people[login_id] = person
        return person

    async def give_licenses(self, login_id: str, *sides: str) -> None:
        """Licenses for a user made outside ``add_person`` (REST, CLI, CSV)."""
        services = self.server.services
        assert services is not None
        async with services.unit() as uow:
            user_id = (
                await uow.session.execute(select(User.id).where(User.login_id == login_id))
            ).scalar_one()
            change = licenses.Change()
            for side in sides or ("lgwan", "internet"):
                change.set(user_id, side, True)
            await licenses.apply(uow, audit.SYSTEM, self.org_id, change)

    async def sign_in(self, person: Person) -> None:
        client = httpx.AsyncClient(base_url=self.server.url_for(person.side), timeout=30)
        response = await client.post(
            "/api/auth/login", json={"login_id": person.login_id, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        person.token = response.json()["token"]
        client.headers["Authorization"] = f"Bearer {person.token}"
        if person.http is not None:
            await person.http.aclose()
        person.http = client

    async def close(self) -> None:
        for person in self.people.values():
            if person.http is not None:
                await person.http.aclose()


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error body of a refused request: status, stable code, both sentences."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["message_en"]
    return dict(error)


def client_id() -> str:
    return uuid.uuid4().hex


class Ws:
    """A websocket client speaking our protocol (hello with a token, answers pings)."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        server: Server,
        token: str,
        since: dict[int, int] | None = None,
        *,
        side: str = "internet",
        **kwargs: Any,
    ) -> Ws:
        conn = await websockets.connect(server.ws_url_for(side), max_size=2**22, **kwargs)
        ws = cls(conn)
        await ws.send(
            {
                "type": "hello",
                "token": token,
                "since": {str(k): v for k, v in (since or {}).items()},
            }
        )
        await ws.expect("welcome")
        await ws.expect("synced")
        return ws

    async def send(self, frame: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
            if frame.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            self.seen.append(frame)
            return frame

    async def expect(self, type_: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next frame of this type (others are kept in ``seen`` and skipped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {type_} frame matching {match}")
            frame = await self.recv(left)
            if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.expect("event", timeout, event=name)

    async def close(self) -> None:
        await self.conn.close()
