"""One module per format family; each exposes `disarm(data, ctx) -> Disarmed`, and a family
that can rewrite from file to file (PDF) also `disarm_file(untrusted_in, out, ctx) -> mime`.

The contract (after mat2's): a disarmer rebuilds the file from what it knows to be inert,
records every removal in `ctx`, and raises `Blocked` rather than return anything it could
not fully parse. It never fails silently and never returns the input unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sanitizer.context import Context


@dataclass(frozen=True)
class Disarmed:
    """A rebuilt file and its type (one of `sanitizer.mimes.OUTPUT_MIMES`)."""

    data: bytes
    mime: str


Disarmer = Callable[[bytes, Context], Disarmed]

#: (open input, open output, context) -> MIME of what was written to the output.
StreamingDisarmer = Callable[[BinaryIO, BinaryIO, Context], str]
