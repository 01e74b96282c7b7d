"""The one error tree of the chat domain, with stable machine-readable codes.

``ChatError``
    ``BadRequest`` (400) — ``invalid_input``, ``csv_invalid``, ``password_too_weak``…
    ``Unauthenticated`` (401) — ``not_authenticated``, ``invalid_credentials``, ``session_expired``
    ``Forbidden`` (403) — ``forbidden``, ``not_a_member``, ``csrf_failed``,
    ``account_locked`` (423 over HTTP), ``account_inactive``
    ``NotFound`` (404) — ``not_found``
    ``Conflict`` (409) — ``conflict``, ``already_exists``
    ``TooLarge`` (413) — ``too_large``
    ``RangeNotSatisfiable`` (416) — ``range_not_satisfiable``

Attachments add ``attachment_not_ready`` (409), ``original_not_released`` and
``attachment_blocked`` (403); the storage package's own errors (``file_too_large`` 413,
``empty_file`` 400) keep their codes and are listed here too.

Each error carries a Japanese sentence (``message``) and an English one (``message_en``).  The
HTTP status and the websocket close code of every code live in the table below, nowhere else.
"""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    code = "error"

    def __init__(
        self,
        message: str,
        message_en: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message_en)
        if code is not None:
            self.code = code
        self.message = message
        self.message_en = message_en
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ChatError):
    code = "invalid_input"


class Unauthenticated(ChatError):
    code = "not_authenticated"


class Forbidden(ChatError):
    code = "forbidden"


class NotFound(ChatError):
    code = "not_found"


class Conflict(ChatError):
    code = "conflict"


class TooLarge(ChatError):
    code = "too_large"


class RangeNotSatisfiable(ChatError):
    code = "range_not_satisfiable"


HTTP_STATUS: dict[str, int] = {
    "invalid_input": 400,
    "csv_invalid": 400,
    "password_too_weak": 400,
    "not_authenticated": 401,
    "invalid_credentials": 401,
    "session_expired": 401,
    "forbidden": 403,
    "not_a_member": 403,
    "csrf_failed": 403,
    "account_inactive": 403,
    "account_locked": 423,
    "not_found": 404,
    "conflict": 409,
    "already_exists": 409,
    "too_large": 413,
    "file_too_large": 413,
    "empty_file": 400,
    "attachment_not_ready": 409,
    "original_not_released": 403,
    "attachment_blocked": 403,
    "range_not_satisfiable": 416,
    # sides, licenses, roles (issue 4)
    "license_required": 403,
    "session_other_side": 401,
    "outside_department": 403,
    "license_pool_exhausted": 409,
    "department_quota_exhausted": 409,
    "pool_below_assigned": 409,
    "quota_below_assigned": 409,
    # devices and policy, approvals, previews (issue 5)
    "device_not_registered": 403,
    "device_invalid": 403,
    "device_code_invalid": 400,
    "encrypted_storage_required": 403,
    "screenshot_protection_required": 403,
    "view_only_device": 403,
    "outbound_pending": 403,
    "own_request": 403,
    "already_requested": 409,
    "already_decided": 409,
    "preview_unavailable": 403,
    "preview_failed": 422,
    "invalid_location": 400,
    "attachment_sent": 409,
}

_BASE_STATUS: dict[type[ChatError], int] = {
    BadRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    RangeNotSatisfiable: 416,
}

# Websocket close codes (4000-4999 are ours).  Documented in docs/protocol.md.
WS_CLOSE_NORMAL = 1000
WS_CLOSE_GOING_AWAY = 1001
WS_CLOSE_UNAUTHENTICATED = 4001  # no/invalid/expired token, or hello not sent in time
WS_CLOSE_REVOKED = 4003  # session revoked, signed out everywhere, user deactivated
WS_CLOSE_ORIGIN = 4004  # cross-site handshake refused
WS_CLOSE_SLOW_CONSUMER = 4008  # send queue overflowed; reconnect and resume
WS_CLOSE_HEARTBEAT = 4009  # nothing heard from the client within settings.dead_after_s


def http_status(error: ChatError) -> int:
    if error.code in HTTP_STATUS:
        return HTTP_STATUS[error.code]
    for cls, status in _BASE_STATUS.items():
        if isinstance(error, cls):
            return status
    return 400
