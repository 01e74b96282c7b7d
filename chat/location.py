"""The location a person chose to share with a field report (写真と位置情報で現場報告).

It comes from the phone's geolocation, is checked here and kept as data on the message; the
photos' own EXIF GPS is removed by the sanitiser, so only what was shared on purpose stays.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from chat.errors import BadRequest
from chat.models import utcnow

MAX_ACCURACY_M = 100_000.0
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_AGE = timedelta(days=30)
LABEL_MAX_CHARS = 200


def _bad(field: str) -> BadRequest:
    return BadRequest(
        "位置情報が正しくありません(緯度は-90〜90、経度は-180〜180、精度は0m以上)。",
        "The location is not valid (latitude -90..90, longitude -180..180, accuracy ≥ 0 m).",
        code="invalid_location",
        details={"field": field},
    )


def _number(untrusted: Any, field: str, low: float, high: float) -> float:
    if isinstance(untrusted, bool) or not isinstance(untrusted, int | float):
        raise _bad(field)
    value = float(untrusted)
    if not math.isfinite(value) or not low <= value <= high:
        raise _bad(field)
    return value


def check_location(untrusted: Any) -> dict[str, Any] | None:
    """``{"lat", "lng", "accuracy_m"?, "taken_at"?, "label"?}`` → the stored form, or ``None``."""
    if untrusted is None:
        return None
    if not isinstance(untrusted, dict):
        raise _bad("location")
    unknown = set(untrusted) - {"lat", "lng", "accuracy_m", "taken_at", "label"}
    if unknown:
        raise _bad(sorted(unknown)[0])
    location: dict[str, Any] = {
        "lat": round(_number(untrusted.get("lat"), "lat", -90.0, 90.0), 7),
        "lng": round(_number(untrusted.get("lng"), "lng", -180.0, 180.0), 7),
    }
    if untrusted.get("accuracy_m") is not None:
        location["accuracy_m"] = round(
            _number(untrusted["accuracy_m"], "accuracy_m", 0.0, MAX_ACCURACY_M), 1
        )
    taken = untrusted.get("taken_at")
    if taken is not None:
        if not isinstance(taken, str) or len(taken) > 40:
            raise _bad("taken_at")
        try:
            at = datetime.fromisoformat(taken)
        except ValueError:
            raise _bad("taken_at") from None
        if at.tzinfo is None:
            raise _bad("taken_at")
        now = utcnow()
        if not now - MAX_AGE <= at <= now + MAX_CLOCK_SKEW:
            raise _bad("taken_at")
        location["taken_at"] = at.isoformat()
    label = untrusted.get("label")
    if label is not None:
        if not isinstance(label, str) or len(label) > LABEL_MAX_CHARS:
            raise _bad("label")
        location["label"] = label.strip()
    return location
