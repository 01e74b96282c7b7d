"""The FastAPI application: ``create_app(settings)`` and its lifespan.  Nothing at import."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from chat.broker import make_broker
from chat.db import Database
from chat.errors import ChatError, http_status
from chat.http import admin, auth, rooms
from chat.hub import Hub, Metrics
from chat.services import Services
from chat.settings import Settings
from chat.ws import websocket_endpoint

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
        try:
            yield
        finally:
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

    @app.middleware("http")
    async def _headers_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        svc: Services | None = getattr(request.app.state, "services", None)
        if svc is not None:
            svc.metrics.http_latency.labels(request.method, str(response.status_code)).observe(
                time.perf_counter() - start
            )
        return response

    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(rooms.router)
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
    )
    return Services(settings=settings, db=db, broker=broker, hub=hub, metrics=metrics)


async def close_services(services: Services) -> None:
    await services.hub.stop()
    await services.broker.close()
    await services.db.dispose()
