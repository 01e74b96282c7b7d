"""The FastAPI application: ``create_app(settings)`` and its lifespan.  Nothing at import."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat.broker import make_broker
from chat.db import Database
from chat.errors import ChatError, http_status
from chat.http import (
    admin,
    approvals,
    attachments,
    audit,
    auth,
    devices,
    licenses,
    presence,
    previews,
    rooms,
)
from chat.hub import Hub, Metrics
from chat.presence import Presence
from chat.sanitizing import Sanitizing
from chat.services import Services
from chat.settings import Settings
from chat.sides import SideMiddleware, SideResolver
from chat.ws import websocket_endpoint
from storage.blobs import make_blob_store
from storage.errors import StorageError

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


class HeadersAndMetrics:
    """Security headers (``Cache-Control: no-store`` on ``/api/``) unless the route set its
    own, and the HTTP latency metric (until the response starts).  Plain ASGI: a
    ``BaseHTTPMiddleware`` would run a task group for every chunk of a request body, which
    cost a 20 MiB upload about a quarter of its CPU time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
                if api:
                    headers.setdefault("Cache-Control", "no-store")
                svc: Services | None = getattr(scope["app"].state, "services", None)
                if svc is not None:
                    svc.metrics.http_latency.labels(
                        scope["method"], str(message["status"])
                    ).observe(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_response(code: str, message: str, message_en: str, status: int, **extra: Any) -> Any:
    body = {"error": {"code": code, "message": message, "message_en": message_en, **extra}}
    return JSONResponse(body, status_code=status)


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        svc = services or await build_services(settings)
        app.state.services = svc
        if own:
            await svc.hub.start()
        # The sanitiser pipeline lives as long as the app serves, whoever built the services.
        await svc.sanitizing.start()
        try:
            yield
        finally:
            await svc.sanitizing.stop()
            if own:
                await close_services(svc)

    app = FastAPI(
        title="Kakehashi API",
        version="0.1.0",
        description="Business chat for local governments. See docs/protocol.md for the websocket.",
        lifespan=lifespan,
    )

    @app.exception_handler(ChatError)
    async def _chat_error(_: Request, exc: ChatError) -> Any:
        return JSONResponse({"error": exc.to_dict()}, status_code=http_status(exc))

    @app.exception_handler(StorageError)
    async def _storage_error(_: Request, exc: StorageError) -> Any:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Any:
        fields = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return error_response(
            "invalid_input",
            "入力の形式が正しくありません。",
            "The request is not in the expected form.",
            400,
            details={"fields": fields},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(code, "見つかりません。", str(exc.detail), exc.status_code)

    app.add_middleware(HeadersAndMetrics)

    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(licenses.router)
    app.include_router(audit.router)
    app.include_router(rooms.router)
    app.include_router(attachments.router)
    app.include_router(presence.router)
    app.include_router(devices.router)
    app.include_router(approvals.router)
    app.include_router(previews.router)
    app.add_api_websocket_route("/ws", websocket_endpoint)

    @app.get("/healthz", tags=["system"])
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz", tags=["system"])
    async def readyz(request: Request) -> Any:
        svc: Services = request.app.state.services
        checks = {"database": False, "broker": False}
        try:
            async with svc.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            log.exception("readiness: database")
        checks["broker"] = await svc.broker.ping()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["system"], include_in_schema=False)
    async def metrics(request: Request) -> Any:
        svc: Services = request.app.state.services
        return PlainTextResponse(
            generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    if WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    # Outermost: every HTTP request and websocket knows its side before anything else runs.
    app.state.side_resolver = SideResolver(settings)
    app.add_middleware(SideMiddleware, resolver=app.state.side_resolver)
    return app


async def build_services(settings: Settings) -> Services:
    db = Database(settings.effective_database_url)
    broker = make_broker(settings.redis_url, settings.redis_prefix)
    metrics = Metrics()
    hub = Hub(
        db,
        broker,
        metrics,
        resync=settings.redis_url is not None,
        ping_interval_s=settings.ping_interval_s,
        dead_after_s=settings.dead_after_s,
        presence=Presence(settings.redis_url, settings.redis_prefix),
    )
    secret = settings.blob_secret_access_key
    blobs = make_blob_store(
        settings.effective_blob_url,
        access_key_id=settings.blob_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
    )
    return Services(
        settings=settings,
        db=db,
        broker=broker,
        hub=hub,
        metrics=metrics,
        blobs=blobs,
        sanitizing=Sanitizing(settings, db, broker, blobs),
    )


async def close_services(services: Services) -> None:
    await services.sanitizing.stop()
    await services.hub.stop()
    await services.blobs.close()
    await services.broker.close()
    await services.db.dispose()
