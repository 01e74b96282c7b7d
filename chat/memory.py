"""Per-connection building blocks that an idle connection pays little for.

An ``asyncio.Queue`` allocates four deques (getters, putters, its ``finished`` event's waiters,
the items) and an ``asyncio.Event`` one, about 0.75 KB each whether or not anything is ever
queued or awaited: some 8 KB for the queues and events of one idle websocket connection.
These keep nothing but a few slots until something is queued or awaited.  They are for a
single event loop, like asyncio's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LightQueue(Generic[T]):
    """The part of ``asyncio.Queue`` the connections use: ``put_nowait`` (``QueueFull`` past
    ``maxsize`` when it is above zero), ``get``, ``get_nowait``, ``empty``, ``qsize``,
    ``full``; items in order, getters served in order.  In addition, one producer may wait
    for an item to be taken (``wait_taken``) to go at the consumer's pace."""

    __slots__ = ("_getters", "_items", "_maxsize", "_taken")

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        self._items: deque[T] | None = None
        self._getters: list[asyncio.Future[None]] | None = None
        self._taken: asyncio.Future[None] | None = None  # one producer waiting for room

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self._maxsize <= self.qsize()

    def put_nowait(self, item: T) -> None:
        if self.full():
            raise asyncio.QueueFull
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an empty deque still holds a block of 64 slots
        self.wake_producer()
        return item

    async def wait_taken(self) -> None:
        """Until an item is taken (or ``wake_producer`` is called): for the one producer
        that paces itself to the consumer, rather than being refused at ``maxsize``."""
        if self._taken is not None:
            raise RuntimeError("one producer at a time may wait on a LightQueue")
        self._taken = asyncio.get_running_loop().create_future()
        try:
            await self._taken
        finally:
            self._taken = None

    def wake_producer(self) -> None:
        taken = self._taken
        if taken is not None and not taken.done():
            taken.set_result(None)

    async def get(self) -> T:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                self._forget(getter)
                if not getter.cancelled() and self._items:
                    self._wake_one()  # woken, then cancelled: the item goes to the next getter
                raise
            self._forget(getter)
        return self.get_nowait()

    def _wake_one(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None

    def _forget(self, getter: asyncio.Future[None]) -> None:
        getters = self._getters
        if getters is not None:
            if getter in getters:
                getters.remove(getter)
            if not getters:
                self._getters = None


class Flag:
    """``asyncio.Event``'s ``is_set``, ``set``, ``clear`` and ``wait``."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return True
