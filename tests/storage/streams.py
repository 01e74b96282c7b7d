"""Upload streams for the tests: deterministic bytes of any length, in chunks the size a web
server hands over, with a record of how much was pulled from them."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

CHUNK_BYTES = 64 * 1024
_BLOCK = random.Random(5).randbytes(1024 * 1024 + 7)  # not a multiple of the chunk size


def pattern(size: int, chunk: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """(offset in the block, length) of each chunk of a ``size``-byte stream."""
    spans = []
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        start = sent % (len(_BLOCK) - chunk)
        spans.append((start, n))
        sent += n
    return spans


def expected(size: int, chunk: int = CHUNK_BYTES) -> tuple[str, bytes]:
    """SHA-256 hex and (for small sizes) the bytes of ``stream(size, chunk)``."""
    hasher = hashlib.sha256()
    kept = bytearray()
    for start, n in pattern(size, chunk):
        piece = _BLOCK[start : start + n]
        hasher.update(piece)
        if size <= 4 * 1024 * 1024:
            kept += piece
    return hasher.hexdigest(), bytes(kept)


class Stream:
    """``size`` bytes in chunks; ``pulled`` counts what the consumer took.  With ``then`` set,
    after the bytes it either raises that exception or, for ``"block"``, sets ``blocked`` and
    waits for ever (to be cancelled).  ``size=None`` never ends."""

    def __init__(
        self,
        size: int | None,
        *,
        chunk: int = CHUNK_BYTES,
        then: BaseException | str | None = None,
    ) -> None:
        self.size = size
        self.chunk = chunk
        self.then = then
        self.pulled = 0
        self.blocked = asyncio.Event()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while self.size is None or self.pulled < self.size:
                n = self.chunk if self.size is None else min(self.chunk, self.size - self.pulled)
                start = self.pulled % (len(_BLOCK) - self.chunk)
                self.pulled += n
                yield _BLOCK[start : start + n]
                await asyncio.sleep(0)
            if self.then == "block":
                self.blocked.set()
                await asyncio.Event().wait()
            elif isinstance(self.then, BaseException):
                raise self.then
        finally:
            self.closed = True


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def of(*parts: bytes) -> AsyncIterator[bytes]:
    """A stream of the given chunks."""
    for part in parts:
        yield part
