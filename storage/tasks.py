"""Awaiting work that must not be abandoned half-way (thread work on a file, clean-ups), and
stopping background tasks a service owns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long :func:`cancel_all` waits before cancelling a task that is still running again.
RECANCEL_AFTER_S = 1.0


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


async def cancel_all(tasks: Iterable[asyncio.Task[object] | None]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again each
    :data:`RECANCEL_AFTER_S` a task still runs: library code that swallows a cancellation
    (seen once in a Redis client's pipeline, whose task then slept on) must not hang a
    shutdown.  What the tasks raised is dropped, as ``gather(return_exceptions=True)`` does."""
    pending = {task for task in tasks if task is not None}
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER_S)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: no "never retrieved" warning
        for task in pending:
            log.warning("task %s did not end when cancelled; cancelling it again", task.get_name())
