"""Tables.  Read positions, not one row per message per reader; events numbered per room."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


ID = BigInteger().with_variant(Integer(), "sqlite")


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    password_min_length: Mapped[int] = mapped_column(Integer, default=10)
    password_min_classes: Mapped[int] = mapped_column(Integer, default=2)
    lockout_threshold: Mapped[int] = mapped_column(Integer, default=5)
    lockout_minutes: Mapped[int] = mapped_column(Integer, default=15)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("org_id", "code"),)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    login_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    kana: Mapped[str] = mapped_column(String(100), default="")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    title: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(16), default="member")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column()


class AuthSession(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    # The side the session was opened on (decided by the server's ingress); it is valid there only.
    side: Mapped[str] = mapped_column(String(8), default="internet", server_default="internet")
    # The client: a registered device (its declarations count) or none (no capabilities).
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16), default="browser", server_default="browser")
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # direct | group
    name: Mapped[str] = mapped_column(String(200), default="")
    # "small_id:large_id" for direct rooms: one room per pair, found again.
    direct_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoomMember(Base):
    __tablename__ = "room_members"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(8), default="member")  # admin | member
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    joined_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Personal archive: hidden from this member's room list until the room's next activity.
    archived_at: Mapped[datetime | None] = mapped_column()


class Event(Base):
    """The per-room event log: what the websocket delivers and what resume replays."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The side of the request that caused it (None: the system, e.g. an administrator's CLI).
    side: Mapped[str | None] = mapped_column(String(8))
    __table_args__ = (UniqueConstraint("room_id", "seq"),)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    mention_all: Mapped[bool] = mapped_column(Boolean, default=False)
    mentions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"user_ids": [...]}
    # A field report's shared location (chat/location.py); None for other messages.
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column()
    recalled_at: Mapped[datetime | None] = mapped_column()
    __table_args__ = (
        UniqueConstraint("sender_id", "client_id"),
        Index("ix_messages_room_seq", "room_id", "seq", unique=True),
        Index("ix_messages_room_created", "room_id", "created_at"),
        Index(
            "ix_messages_body_trgm",
            "body",
            postgresql_using="gin",
            postgresql_ops={"body": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class Mention(Base):
    __tablename__ = "mentions"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_mentions_user_room_seq", "user_id", "room_id", "seq"),)


class MessageEdit(Base):
    __tablename__ = "message_edits"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    edited_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reaction(Base):
    __tablename__ = "reactions"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LicensePool(Base):
    """How many licenses the organisation bought for one side."""

    __tablename__ = "license_pools"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DepartmentQuota(Base):
    """An optional share of a side's pool set aside for a department and its sub-departments."""

    __tablename__ = "department_quotas"
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, default=0)


class License(Base):
    """A user's right to use one side."""

    __tablename__ = "licenses"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None] = mapped_column()
    __table_args__ = (Index("ix_licenses_org_side", "org_id", "side"),)


class AuditEntry(Base):
    """The append-only audit log: each entry carries the hash of the one before it."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_login: Mapped[str] = mapped_column(String(64), default="")
    side: Mapped[str | None] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_log_org_at", "org_id", "at"),
        Index("ix_audit_log_org_action", "org_id", "action"),
        Index("ix_audit_log_actor", "actor_id"),
    )


class OrgPolicy(Base):
    """The organisation's rules for devices, mobile clients and outbound files."""

    __tablename__ = "org_policies"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    registered_device_lgwan: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_device_internet: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile_encrypted_storage: Mapped[bool] = mapped_column(Boolean, default=True)
    mobile_save_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile_screenshot_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    outbound_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceCode(Base):
    """A one-time code (端末認証コード) an administrator issues for registering one device."""

    __tablename__ = "device_codes"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: any user
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))


class Device(Base):
    """A registered client device: its credential is stored hashed; revoking it cuts it off."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"declared": [...]}
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Approval(Base):
    """A request a supervisor (課長・班長) decides: ``release`` — the original of a file sent
    from the internet side, for one LGWAN-side requester; ``outbound`` — a file sent from the
    LGWAN side, for the room's internet-side members (when the policy asks for it)."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # release | outbound
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The requester's department when asked: whose supervisors decide.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_approvals_org_state", "org_id", "state"),)


class AuditHead(Base):
    """The last entry's number and hash, written with every append: a log cut short at its end
    no longer matches its head."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Attachment(Base):
    """A file sent in a room (issue 5): its original blob, and once sanitised its rendition
    and report.  The name is what the sender's computer called it, for display only: blobs
    are named by their SHA-256 (storage/), never by anything a user chose."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    # Null until the uploader sends a message carrying it.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    side: Mapped[str] = mapped_column(String(8))  # the side it was uploaded from
    filename: Mapped[str] = mapped_column(String(255))
    declared_type: Mapped[str] = mapped_column(String(255), default="")
    detected_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    original_key: Mapped[str] = mapped_column(String(64))
    sanitized_key: Mapped[str | None] = mapped_column(String(64))
    sanitized_filename: Mapped[str | None] = mapped_column(String(255))
    sanitized_type: Mapped[str | None] = mapped_column(String(255))
    sanitized_size: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="scanning")  # scanning|ready|blocked
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        Index("ix_attachments_room_id", "room_id", "id"),
        Index("ix_attachments_state", "state"),
    )
