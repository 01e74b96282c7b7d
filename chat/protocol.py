"""The websocket protocol's frames, with no I/O: parse what a client sent, build what the
server sends.  Documented in docs/protocol.md; tested by feeding it text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chat.settings import MAX_FRAME_BYTES

CLIENT_TYPES = ("hello", "resume", "send", "read", "ping", "pong")


@dataclass(frozen=True)
class ProtocolError(Exception):
    code: str
    message: str
    message_en: str
    ref: str | None = None


@dataclass(frozen=True)
class ClientFrame:
    type: str
    data: dict[str, Any]
    ref: str | None


MAX_ID = 2**63 - 1  # ids and sequence numbers are 64-bit in the database


def _int_field(data: dict[str, Any], key: str, ref: str | None) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise ProtocolError(
            "missing_field",
            f"{key} (0以上の整数) が必要です。",
            f"{key} must be a whole number ≥ 0.",
            ref,
        )
    return value


def _str_field(data: dict[str, Any], key: str, ref: str | None) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(
            "missing_field", f"{key} (文字列) が必要です。", f"{key} must be a string.", ref
        )
    return value


MAX_ATTACHMENT_IDS = 20


def _id_list(untrusted: Any, key: str, ref: str | None) -> list[int]:
    """An optional list of at most MAX_ATTACHMENT_IDS ids (absent or null: empty)."""
    if untrusted is None:
        return []
    if (
        not isinstance(untrusted, list)
        or len(untrusted) > MAX_ATTACHMENT_IDS
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ID for v in untrusted
        )
    ):
        raise ProtocolError(
            "missing_field",
            f"{key} は{MAX_ATTACHMENT_IDS}個までのIDの配列です。",
            f"{key} is a list of at most {MAX_ATTACHMENT_IDS} ids.",
            ref,
        )
    return list(untrusted)


def parse_since(untrusted: Any, ref: str | None) -> dict[int, int]:
    """``{"room id": last seq seen}`` → ``{room_id: seq}``."""
    if untrusted is None:
        return {}
    if not isinstance(untrusted, dict) or len(untrusted) > 10_000:
        raise ProtocolError(
            "missing_field",
            "since はルームIDと番号の対応です。",
            "since maps room ids to sequence numbers.",
            ref,
        )
    since: dict[int, int] = {}
    for key, value in untrusted.items():
        if (
            not str(key).isdigit()
            or int(key) > MAX_ID
            or not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_ID
        ):
            raise ProtocolError(
                "missing_field",
                "since はルームIDと番号の対応です。",
                "since maps room ids to sequence numbers.",
                ref,
            )
        since[int(key)] = value
    return since


def parse_client_frame(untrusted_text: str | bytes) -> ClientFrame:
    """Check a client frame; raise :class:`ProtocolError` with a stable code."""
    if isinstance(untrusted_text, bytes):
        raise ProtocolError(
            "bad_frame", "テキストフレームで送ってください。", "Send text frames (JSON)."
        )
    if (
        len(untrusted_text) > MAX_FRAME_BYTES // 4
        and len(untrusted_text.encode()) > MAX_FRAME_BYTES
    ):
        raise ProtocolError(
            "frame_too_large",
            f"フレームが大きすぎます(上限 {MAX_FRAME_BYTES // 1024} KiB)。",
            f"The frame is larger than {MAX_FRAME_BYTES // 1024} KiB.",
        )
    try:
        untrusted = json.loads(untrusted_text)
    except ValueError:
        raise ProtocolError(
            "bad_json", "JSONとして読めません。", "The frame is not JSON."
        ) from None
    if not isinstance(untrusted, dict):
        raise ProtocolError(
            "bad_frame", "JSONオブジェクトを送ってください。", "Send a JSON object."
        )
    ref = untrusted.get("id")
    if ref is not None and (not isinstance(ref, str) or len(ref) > 64):
        raise ProtocolError("bad_frame", "id は64文字以内の文字列です。", "id is a string ≤ 64.")
    frame_type = untrusted.get("type")
    if frame_type not in CLIENT_TYPES:
        raise ProtocolError(
            "unknown_type",
            "不明なフレームの種類です。",
            f"Unknown frame type; expected one of {', '.join(CLIENT_TYPES)}.",
            ref,
        )
    data: dict[str, Any] = {}
    if frame_type == "hello":
        token = untrusted.get("token")
        if token is not None and not isinstance(token, str):
            raise ProtocolError("missing_field", "token は文字列です。", "token is a string.", ref)
        data = {"token": token, "since": parse_since(untrusted.get("since"), ref)}
    elif frame_type == "resume":
        data = {"since": parse_since(untrusted.get("since"), ref)}
    elif frame_type == "send":
        reply_to = untrusted.get("reply_to")
        if reply_to is not None and (
            not isinstance(reply_to, int)
            or isinstance(reply_to, bool)
            or not 0 < reply_to <= MAX_ID
        ):
            raise ProtocolError("missing_field", "reply_to は整数です。", "reply_to is an id.", ref)
        data = {
            "room_id": _int_field(untrusted, "room_id", ref),
            "client_id": _str_field(untrusted, "client_id", ref),
            "body": _str_field(untrusted, "body", ref),
            "reply_to": reply_to,
            "attachment_ids": _id_list(untrusted.get("attachment_ids"), "attachment_ids", ref),
            # checked by the domain (chat/location.py), which names a bad field
            "location": untrusted.get("location"),
        }
    elif frame_type == "read":
        data = {
            "room_id": _int_field(untrusted, "room_id", ref),
            "seq": _int_field(untrusted, "seq", ref),
        }
    return ClientFrame(frame_type, data, ref)


def json_text(value: Any) -> str:
    """Compact JSON with the characters as they are: what websocket frames carry and what
    JSON columns store (chat.db; half the bytes of ASCII escapes for Japanese text), so that
    a stored event payload goes into a frame as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode(frame: dict[str, Any]) -> str:
    return json_text(frame)


def error_frame(code: str, message: str, message_en: str, ref: str | None = None) -> str:
    return encode(
        {"type": "error", "code": code, "message": message, "message_en": message_en, "ref": ref}
    )
