"""The light per-connection queue and flag (chat/memory.py) behave like asyncio's."""

from __future__ import annotations

import asyncio

import pytest

from chat.memory import Flag, LightQueue


async def test_light_queue_keeps_order_bounds_and_wakes_getters_in_turn() -> None:
    q: LightQueue[str] = LightQueue(2)
    assert q.empty() and q.qsize() == 0 and not q.full()
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.full()
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait("c")
    assert [q.get_nowait(), await q.get()] == ["a", "b"]
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait("x")
    q.put_nowait("y")
    assert await first == "x" and await second == "y"


async def test_a_getter_cancelled_after_being_woken_passes_the_item_on() -> None:
    q: LightQueue[int] = LightQueue()
    cancelled = asyncio.create_task(q.get())
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait(1)  # wakes `cancelled` first
    cancelled.cancel()
    assert await waiting == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled


async def test_flag_sets_waits_and_clears() -> None:
    flag = Flag()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    flag.set()
    assert await waiter is True and flag.is_set()
    flag.clear()
    assert not flag.is_set()
    assert await asyncio.wait_for(Flag(True).wait(), 1) is True


async def test_a_producer_waits_until_an_item_is_taken_or_it_is_woken() -> None:
    q: LightQueue[int] = LightQueue(2)
    q.put_nowait(1)
    waiting = asyncio.create_task(q.wait_taken())
    await asyncio.sleep(0)
    q.put_nowait(2)  # putting does not wake it
    await asyncio.sleep(0)
    assert not waiting.done()
    with pytest.raises(RuntimeError):
        await q.wait_taken()  # one waiting producer at a time
    assert await q.get() == 1
    await asyncio.wait_for(waiting, 1)
    woken = asyncio.create_task(q.wait_taken())
    await asyncio.sleep(0)
    q.wake_producer()  # e.g. the connection closed: nothing will be taken again
    await asyncio.wait_for(woken, 1)
    q.wake_producer()  # with nobody waiting, nothing happens
