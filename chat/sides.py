"""Sides: which network a request came from, decided by the server from its ingress.

The client never says which side it is on.  In order:

1. a connection from a **trusted proxy** (``KAKEHASHI_TRUSTED_PROXIES``) may name the side in
   the side header (``X-Kakehashi-Side``) and the client's address in ``X-Forwarded-For``;
   the same header from anywhere else is ignored and logged;
2. a source address inside a configured network (``KAKEHASHI_LGWAN_NETWORKS`` /
   ``KAKEHASHI_INTERNET_NETWORKS``) belongs to that side;
3. otherwise the listener decides: each port the server listens on serves one side (the
   embedded default listens on ``KAKEHASHI_PORT`` for the internet side and
   ``KAKEHASHI_LGWAN_PORT`` for the LGWAN side).

:class:`SideMiddleware` puts the :class:`Ingress` into every HTTP and websocket scope.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from chat.settings import Settings

Side = Literal["lgwan", "internet"]
SIDES: tuple[Side, ...] = ("lgwan", "internet")
SIDE_HEADER = b"x-kakehashi-side"
FORWARDED_FOR_HEADER = b"x-forwarded-for"
SCOPE_KEY = "kakehashi.ingress"
# The side of the request being handled, for what records it (events) without a parameter.
current_side: ContextVar[str | None] = ContextVar("kakehashi_side", default=None)
FORGED_LOG_INTERVAL_S = 10.0

SIDE_NAMES_JA: dict[str, str] = {"lgwan": "LGWAN接続系", "internet": "インターネット接続系"}
SIDE_NAMES_EN: dict[str, str] = {"lgwan": "LGWAN side", "internet": "internet side"}

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Ingress:
    side: Side
    address: str  # the client's address as far as the server can tell
    via: str  # "listener" | "network" | "proxy"


def parse_side(value: str) -> Side | None:
    value = value.strip().lower()
    for side in SIDES:
        if value == side:
            return side
    return None


def _networks(values: list[str]) -> list[Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def _inside(address: str, networks: list[Network]) -> bool:
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class SideResolver:
    def __init__(self, settings: Settings) -> None:
        self.listeners: dict[int, Side] = dict(settings.listener_sides())
        self.default: Side = settings.default_side
        self.trusted_proxies = _networks(settings.trusted_proxies)
        self.networks: list[tuple[Side, list[Network]]] = [
            ("lgwan", _networks(settings.lgwan_networks)),
            ("internet", _networks(settings.internet_networks)),
        ]
        self.forged = 0
        self._forged_logged_at = 0.0

    def resolve(self, scope: dict[str, Any]) -> Ingress:
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        header, forwarded = None, None
        for name, value in scope.get("headers") or ():
            if name == SIDE_HEADER:
                header = value
            elif name == FORWARDED_FOR_HEADER:
                forwarded = value
        if _inside(peer, self.trusted_proxies):
            address = peer
            if forwarded:
                # The right-most entry is the one our proxy appended itself.
                address = forwarded.decode("latin-1").split(",")[-1].strip() or peer
            if header is not None:
                side = parse_side(header.decode("latin-1"))
                if side is not None:
                    return Ingress(side, address, "proxy")
            return self._by_address(address, scope)
        if header is not None:
            self._forged(peer, header)
        return self._by_address(peer, scope)

    def _by_address(self, address: str, scope: dict[str, Any]) -> Ingress:
        for side, networks in self.networks:
            if _inside(address, networks):
                return Ingress(side, address, "network")
        server = scope.get("server")
        port = int(server[1]) if server and server[1] is not None else None
        return Ingress(
            self.listeners.get(port, self.default) if port else self.default, address, "listener"
        )

    def _forged(self, peer: str, header: bytes) -> None:
        """A side header from an untrusted address: ignored, counted and logged (at most once
        every few seconds, so a flood cannot fill the log)."""
        self.forged += 1
        now = time.monotonic()
        if now - self._forged_logged_at >= FORGED_LOG_INTERVAL_S:
            self._forged_logged_at = now
            log.warning(
                "ignored a side header from untrusted address %s (%r); %d so far",
                peer,
                header[:16],
                self.forged,
            )


class SideMiddleware:
    """Pure ASGI: resolves the side once per connection, for HTTP and websockets alike."""

    def __init__(self, app: Any, resolver: SideResolver) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ingress = self.resolver.resolve(scope)
        scope[SCOPE_KEY] = ingress
        token = current_side.set(ingress.side)
        try:
            await self.app(scope, receive, send)
        finally:
            current_side.reset(token)


def ingress_of(scope: MutableMapping[str, Any]) -> Ingress:
    ingress: Ingress = scope[SCOPE_KEY]
    return ingress
