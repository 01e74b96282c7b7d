"""The shared location of a field report is checked before it is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chat.errors import BadRequest
from chat.location import check_location
from chat.models import utcnow


def test_a_good_location_is_kept_rounded() -> None:
    taken = (utcnow() - timedelta(minutes=3)).isoformat()
    assert check_location(
        {"lat": 35.6812362123, "lng": 139.7671248987, "accuracy_m": 12.345, "taken_at": taken}
    ) == {"lat": 35.6812362, "lng": 139.7671249, "accuracy_m": 12.3, "taken_at": taken}
    assert check_location(None) is None
    assert check_location({"lat": -90, "lng": 180, "label": " 現場A "})["label"] == "現場A"


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ({"lat": 91, "lng": 0}, "lat"),
        ({"lat": 0, "lng": -180.5}, "lng"),
        ({"lat": "35", "lng": 139}, "lat"),
        ({"lat": True, "lng": 139}, "lat"),
        ({"lat": float("nan"), "lng": 139}, "lat"),
        ({"lat": 35, "lng": 139, "accuracy_m": -1}, "accuracy_m"),
        ({"lat": 35, "lng": 139, "taken_at": "yesterday"}, "taken_at"),
        ({"lat": 35, "lng": 139, "taken_at": "2026-01-01T00:00:00"}, "taken_at"),
        (
            {"lat": 35, "lng": 139, "taken_at": (utcnow() + timedelta(hours=1)).isoformat()},
            "taken_at",
        ),
        ({"lat": 35, "lng": 139, "altitude": 3}, "altitude"),
        ({"lat": 35}, "lng"),
        ([35, 139], "location"),
    ],
)
def test_a_bad_location_is_refused_naming_the_field(location: object, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        check_location(location)
    assert info.value.code == "invalid_location" and info.value.details == {"field": field}
