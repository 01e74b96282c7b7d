"""State shared by the disarmers while one file (and the files nested in it) is sanitised."""

from __future__ import annotations

from dataclasses import dataclass, field

from sanitizer import limits
from sanitizer.report import WARNINGS, Blocked, Removed


@dataclass
class Budget:
    """Bytes decompressed so far from every archive of one input (nested ones included)."""

    total_bytes: int = 0
    total_pixels: int = 0

    def spend(self, n: int) -> None:
        self.total_bytes += n
        if self.total_bytes > limits.ZIP_MAX_TOTAL_BYTES:
            raise Blocked("limit_exceeded", "total uncompressed bytes")

    def spend_pixels(self, n: int) -> None:
        self.total_pixels += n
        if self.total_pixels > limits.MAX_TOTAL_IMAGE_PIXELS:
            raise Blocked("limit_exceeded", "total image pixels")

    @property
    def exhausted(self) -> bool:
        """Whether a limit of the whole input (not of one part) has been reached."""
        return (
            self.total_bytes > limits.ZIP_MAX_TOTAL_BYTES
            or self.total_pixels > limits.MAX_TOTAL_IMAGE_PIXELS
        )


@dataclass
class Context:
    """Where we are (`prefix` for nested entries, `depth` of archives) and what was done."""

    filename: str | None
    depth: int = 0
    prefix: str = ""
    removed: list[Removed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)

    def remove(self, kind: str, where: str) -> None:
        self.removed.append(Removed(kind, f"{self.prefix}{where}"))

    def warn(self, code: str) -> None:
        if code not in WARNINGS:
            raise ValueError(f"unknown warning code {code!r}")
        if code not in self.warnings:
            self.warnings.append(code)

    def embedded(self, part: str) -> Context:
        """Context for a part of a document (a picture): same lists, budget and depth."""
        return Context(
            filename=part,
            depth=self.depth,
            prefix=f"{self.prefix}{part}: ",
            removed=self.removed,
            warnings=self.warnings,
            budget=self.budget,
        )

    def nested(self, name: str) -> Context:
        """Context for an entry of an archive: same lists and budget, one level deeper."""
        if self.depth + 1 >= limits.ZIP_MAX_DEPTH:
            raise Blocked("limit_exceeded", "archive depth")
        return Context(
            filename=name,
            depth=self.depth + 1,
            prefix=f"{self.prefix}{name}!/",
            removed=self.removed,
            warnings=self.warnings,
            budget=self.budget,
        )
