"""Request bodies.  Pydantic checks shapes; the domain checks meaning."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    login_id: str = Field(max_length=64)
    password: str = Field(max_length=256)
    # The client's declaration; it counts only with a registered device's credential.
    platform: str | None = Field(default=None, max_length=16)
    capabilities: list[str] = Field(default_factory=list, max_length=8)
    device_id: int | None = None
    device_credential: str | None = Field(default=None, max_length=128)


class PasswordIn(Strict):
    password: str = Field(max_length=256)


class DepartmentIn(Strict):
    name: str = Field(max_length=200)
    parent_id: int | None = None
    code: str | None = Field(default=None, max_length=64)


class DepartmentPatch(Strict):
    name: str = Field(max_length=200)


class UserIn(Strict):
    login_id: str = Field(max_length=64)
    display_name: str = Field(max_length=100)
    kana: str = Field(default="", max_length=100)
    department_id: int | None = None
    title: str = Field(default="", max_length=100)
    email: str = Field(default="", max_length=254)
    role: Literal["admin", "supervisor", "member"] = "member"
    password: str | None = Field(default=None, max_length=256)


class UserPatch(Strict):
    display_name: str | None = Field(default=None, max_length=100)
    kana: str | None = Field(default=None, max_length=100)
    department_id: int | None = None
    title: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    role: Literal["admin", "supervisor", "member"] | None = None


class PasswordPolicyIn(Strict):
    min_length: int
    min_classes: int


class DirectIn(Strict):
    user_id: int


class GroupIn(Strict):
    name: str = Field(max_length=200)
    member_ids: list[int] = Field(default_factory=list, max_length=5000)


class RoomPatch(Strict):
    name: str | None = Field(default=None, max_length=200)
    archived: bool | None = None


class MembersIn(Strict):
    user_ids: list[int] = Field(min_length=1, max_length=5000)


class BulkRoomsIn(Strict):
    action: Literal["leave", "archive", "unarchive"]
    room_ids: list[int] = Field(min_length=1, max_length=1000)


class MessageIn(Strict):
    client_id: str = Field(max_length=64)
    body: str  # its length is the domain's rule (MAX_MESSAGE_CHARS), told in a clear error
    reply_to_id: int | None = None
    # Files uploaded to this room by the sender and not sent yet; with them body may be "".
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)
    # A field report: the location the person chose to share (chat/location.py checks it).
    location: dict[str, Any] | None = None


class MessagePatch(Strict):
    body: str


class ReadIn(Strict):
    seq: int = Field(ge=0)


class SearchQuery(Strict):
    q: str
    room_id: int | None = None
    sender_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


class PoolIn(Strict):
    size: int = Field(ge=0, le=1_000_000)


class LicenseChangeIn(Strict):
    side: str = Field(max_length=16)
    user_ids: list[int] = Field(min_length=1, max_length=20_000)


class LicenseMoveIn(Strict):
    side: str = Field(max_length=16)
    from_user_id: int
    to_user_id: int


class QuotaIn(Strict):
    size: int | None = Field(default=None, ge=0, le=1_000_000)


class QuotaMoveIn(Strict):
    side: str = Field(max_length=16)
    from_department_id: int
    to_department_id: int
    count: int = Field(ge=1, le=1_000_000)


class DeviceRegisterIn(Strict):
    code: str = Field(max_length=64)
    name: str = Field(max_length=100)
    platform: str = Field(max_length=16)
    capabilities: list[str] = Field(default_factory=list, max_length=8)


class DeviceCodeIn(Strict):
    label: str = Field(default="", max_length=100)
    user_id: int | None = None
    ttl_hours: float = Field(default=24, gt=0, le=720)


class DevicePatch(Strict):
    name: str = Field(max_length=100)


class PolicyIn(Strict):
    registered_device_lgwan: bool | None = None
    registered_device_internet: bool | None = None
    mobile_encrypted_storage: bool | None = None
    mobile_save_allowed: bool | None = None
    mobile_screenshot_allowed: bool | None = None
    outbound_approval: bool | None = None


class ReleaseRequestIn(Strict):
    reason: str = Field(max_length=2000)


class DecisionIn(Strict):
    note: str = Field(default="", max_length=2000)
