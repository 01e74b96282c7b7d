"""A field report (写真と位置情報で現場報告): photos plus the location the person chose to share.
The camera's EXIF GPS is gone from what others receive; the shared location is data on the
message, shown to the room."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from chat.models import utcnow
from chat.settings import Settings
from tests.harness import World, Ws, client_id, error_of
from tests.test_attachments import upload, wait_state

GPS_IFD = 0x8825


@pytest.fixture
async def settings(settings: Settings) -> AsyncIterator[Settings]:
    settings.sanitizer_workers = 1
    yield settings


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (320, 240), (90, 140, 60))
    exif = Image.Exif()
    exif[0x010F] = "KakehashiCam"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (35.0, 40.0, 52.0), 3: "E", 4: (139.0, 46.0, 1.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_photos_and_the_shared_location_reach_the_room_without_exif_gps(
    world: World,
) -> None:
    alice, bob = world["alice"], world["bob"]  # alice in the field (internet side)
    room = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]
    raw = photo_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(GPS_IFD)  # the camera wrote GPS
    r = await upload(alice, room, raw, "現場写真.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    photo = r.json()["id"]
    office = await Ws.connect(world.server, bob.token)
    taken = utcnow().isoformat()
    location = {"lat": 35.6811, "lng": 139.7670, "accuracy_m": 8.5, "taken_at": taken}
    sent = await alice.api.post(
        f"/api/rooms/{room}/messages",
        json={
            "client_id": client_id(),
            "body": "",
            "attachment_ids": [photo],
            "location": location,
        },
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["location"] == location
    event = await office.event("message")
    message = event["data"]["message"]
    assert message["location"] == location and [a["id"] for a in message["attachments"]] == [photo]
    await wait_state(bob, photo, "ready")
    got = await bob.api.get(f"/api/attachments/{photo}/content")
    assert got.status_code == 200
    cleaned = Image.open(io.BytesIO(got.content))
    assert cleaned.size == (320, 240)
    assert not cleaned.getexif().get_ifd(GPS_IFD) and 0x010F not in cleaned.getexif()
    history = (await bob.api.get(f"/api/rooms/{room}/messages")).json()["messages"]
    assert history[-1]["location"] == location
    # a bad location is refused with the field named, and nothing is sent
    bad = await alice.api.post(
        f"/api/rooms/{room}/messages",
        json={"client_id": client_id(), "body": "x", "location": {"lat": 135, "lng": 35}},
    )
    assert error_of(bad, 400, "invalid_location")["details"] == {"field": "lat"}
    await office.send(
        {
            "type": "send",
            "room_id": room,
            "client_id": client_id(),
            "body": "",
            "location": {"lat": 35.0, "lng": 139.0},
        }
    )
    ack = await office.expect("ack")
    assert ack["room_id"] == room
    # recalled: the location goes with the text
    mid = sent.json()["id"]
    assert (await alice.api.post(f"/api/messages/{mid}/recall")).status_code == 200
    assert (await bob.api.get(f"/api/messages/{mid}")).json()["location"] is None
    await office.close()
