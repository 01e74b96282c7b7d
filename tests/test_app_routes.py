"""Every endpoint and dependency of the app runs on the event loop: FastAPI runs a plain
``def`` in a worker thread, a thread hop (and a wait for a free thread) on every request."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from chat.app import create_app
from chat.settings import Settings


def calls(dependant: Dependant) -> list[object]:
    found = [dependant.call] if dependant.call is not None else []
    for sub in dependant.dependencies:
        found += calls(sub)
    return found


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's endpoints, through included routers (kept as such by FastAPI >= 0.16x)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        inner = getattr(getattr(route, "original_router", route), "routes", None)
        if inner is not None and inner is not routes:
            found += api_routes(list(inner))
    return found


def test_no_endpoint_or_dependency_runs_in_a_worker_thread(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = api_routes(list(app.routes))
    assert len(routes) > 20
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in calls(route.dependant)
        if not inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)
    }
    assert sync == set()
