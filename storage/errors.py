"""The errors of the storage package, with stable machine-readable codes.

``StorageError`` (500) — ``storage_error``
    ``EmptyFile`` (400) — ``empty_file``
    ``BlobNotFound`` (404) — ``not_found``
    ``FileTooLarge`` (413) — ``file_too_large``

They have the shape of ``chat.errors.ChatError`` (``code``, ``message`` in Japanese,
``message_en``, ``details``, :meth:`StorageError.to_dict`) plus the HTTP ``status`` each is
meant for, so the chat transport maps them in its one table without storage importing it.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    code = "storage_error"
    status = 500

    def __init__(
        self, message: str, message_en: str, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message_en)
        self.message = message
        self.message_en = message_en
        self.details = details or {}

    @property
    def ja(self) -> str:
        return self.message

    @property
    def en(self) -> str:
        return self.message_en

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }
        if self.details:
            body["details"] = self.details
        return body


class FileTooLarge(StorageError):
    code = "file_too_large"
    status = 413

    def __init__(self, max_bytes: int) -> None:
        ja, en = _sizes(max_bytes)
        super().__init__(
            f"ファイルが大きすぎます。添付できるのは {ja} までです。",
            f"The file is too large: attachments may be at most {en}.",
            details={"max_bytes": max_bytes},
        )


class EmptyFile(StorageError):
    code = "empty_file"
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "空のファイル (0 バイト) は添付できません。",
            "An empty file (0 bytes) cannot be attached.",
        )


class BlobNotFound(StorageError):
    code = "not_found"
    status = 404

    def __init__(self, key: str) -> None:
        super().__init__(
            "ファイルが見つかりません。削除された可能性があります。",
            "The file was not found; it may have been deleted.",
            details={"key": key},
        )


def _sizes(n: int) -> tuple[str, str]:
    """``20 MiB`` for whole mebibytes, otherwise the exact byte count (Japanese, English)."""
    mib = 1024 * 1024
    if n >= mib and n % mib == 0:
        return f"{n // mib} MiB", f"{n // mib} MiB"
    return f"{n:,} バイト", f"{n:,} bytes"
