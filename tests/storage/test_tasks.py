"""storage/tasks.py: stopping owned tasks ends even a task that swallows a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from storage import tasks as tasks_module
from storage.tasks import cancel_all


async def swallows_first_cancel(cancels_seen: list[int]) -> None:
    """Like a loop whose library caught the cancellation and went back to sleep."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancels_seen.append(1)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancels_seen.append(2)
        raise


async def fails() -> None:
    raise RuntimeError("a task that failed before the stop")


async def test_cancel_all_cancels_again_a_task_that_swallowed_its_cancellation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks_module, "RECANCEL_AFTER_S", 0.05)
    seen: list[int] = []
    stubborn = asyncio.create_task(swallows_first_cancel(seen), name="stubborn")
    plain = asyncio.create_task(asyncio.sleep(3600), name="plain")
    failed = asyncio.create_task(fails(), name="failed")
    await asyncio.sleep(0)
    # A hang guard, not a speed check: before cancel_all, this stop waited forever.
    async with asyncio.timeout(30):
        await cancel_all([stubborn, None, plain, failed])
    assert seen == [1, 2]
    assert stubborn.cancelled() and plain.cancelled()
    assert isinstance(failed.exception(), RuntimeError)
    assert "task stubborn did not end when cancelled" in caplog.text


async def test_cancel_all_of_nothing_returns() -> None:
    await cancel_all([])
    await cancel_all([None])
