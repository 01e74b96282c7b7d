"""Awaiting work that must not be abandoned half-way (thread work on a file, clean-ups)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def uninterrupted(awaitable: Awaitable[T], *, undo: Callable[[T], object] | None = None) -> T:
    """Await ``awaitable`` to its end even if the calling task is cancelled meanwhile, then
    re-raise the cancellation (after ``undo(result)`` if it had succeeded, so that a file it
    opened is not lost).  Used for thread work on a file descriptor (no descriptor is closed
    under a thread still using it) and for the clean-up of a failed write."""
    inner = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not inner.done():
        try:
            await asyncio.wait([inner])  # unlike ``await inner``, never cancels it
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not inner.cancelled() and inner.exception() is None and undo is not None:
            undo(inner.result())
        raise cancelled
    return inner.result()


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``asyncio.to_thread`` that is never abandoned half-way (see :func:`uninterrupted`)."""
    return await uninterrupted(asyncio.to_thread(func, *args, **kwargs))
