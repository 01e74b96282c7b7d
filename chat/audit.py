"""The audit log: an append-only, hash-chained record of every security-relevant act.

Each entry carries the SHA-256 of the entry before it (``prev_hash``) and its own ``hash``,
computed over its number, its content and ``prev_hash``; the ``audit_head`` row holds the last
number and hash.  Changing, deleting or reordering an entry breaks the chain at that entry, and
cutting entries off the end no longer matches the head (see :func:`verify`).

Entries are written in the transaction of the act they record (a rolled-back act leaves no
entry), serialised by the database: SQLite's single writer, PostgreSQL's advisory lock.

Reading the log: :func:`search` (newest first, a page at a time), :func:`export_chunks` (CSV
that Excel opens, or JSON Lines; streamed in batches) and :func:`verify` (walks the whole chain
in batches and names every entry that does not hold).  See docs/audit.md.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chat.db import Database
from chat.errors import BadRequest
from chat.models import AuditEntry, AuditHead, utcnow
from chat.sides import SIDE_NAMES_EN, SIDE_NAMES_JA, SIDES

GENESIS_HASH = "0" * 64
HEAD_ID = 1
# pg_advisory_xact_lock key: the audit log's one writer at a time across all app processes.
PG_LOCK_KEY = 0x6B616B65  # "kake"

JST = ZoneInfo("Asia/Tokyo")  # administrators read times in Japan time (日本時間)
SEARCH_DEFAULT_LIMIT = 100
SEARCH_MAX_LIMIT = 500
VERIFY_BATCH_ROWS = 2000  # entries read per query while walking the chain
EXPORT_BATCH_ROWS = 1000  # entries read (and encoded) per query while exporting
VERIFY_MAX_PROBLEMS = 1000  # problems listed in a result; the rest are only counted
MAX_FILTER_CHARS = 64
MAX_SEQ = 2**63  # BIGINT

ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl")
EXPORT_MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}

# What each action is called in the CSV export and on the admin screen: (日本語, English).
ACTION_LABELS: dict[str, tuple[str, str]] = {
    "auth.sign_in": ("ログイン", "signed in"),
    "auth.sign_in_failed": ("ログイン失敗", "sign-in failed"),
    "auth.sign_out": ("ログアウト", "signed out"),
    "auth.sign_out_everywhere": ("全端末からログアウト", "signed out everywhere"),
    "license.pool": ("ライセンス数の変更", "license pool size changed"),
    "license.quota": ("部署の割当上限の変更", "department quota changed"),
    "license.assign": ("ライセンスの割り当て", "license assigned"),
    "license.revoke": ("ライセンスの解除", "license revoked"),
    "user.create": ("利用者の登録", "user created"),
    "user.update": ("利用者情報の変更", "user updated"),
    "user.role_change": ("権限の変更", "user's role changed"),
    "user.password_reset": ("パスワードの再設定(管理者)", "password reset by an administrator"),
    "user.password_change": ("パスワードの変更(本人)", "password changed by the user"),
    "user.deactivate": ("利用者の無効化", "user deactivated"),
    "user.reactivate": ("利用者の再有効化", "user reactivated"),
    "user.import": ("利用者のCSV一括登録", "users imported from CSV"),
    "department.create": ("部署の作成", "department created"),
    "department.rename": ("部署名の変更", "department renamed"),
    "policy.password": ("パスワードポリシーの変更", "password policy changed"),
    "attachment.upload": ("ファイルのアップロード", "file uploaded"),
    "attachment.discard": ("送信前のファイルの取り消し", "unsent upload taken back"),
    "attachment.preview": ("ファイルのプレビュー表示", "file previewed"),
    "attachment.download": ("ファイルのダウンロード", "file downloaded"),
    "attachment.download_refused": ("ファイルのダウンロード拒否", "file download refused"),
    "device.code_issue": ("端末認証コードの発行", "device code issued"),
    "device.code_revoke": ("端末認証コードの取り消し", "device code withdrawn"),
    "device.register": ("端末の登録", "device registered"),
    "device.rename": ("端末名の変更", "device renamed"),
    "device.revoke": ("端末の登録取り消し", "device revoked"),
    "policy.update": ("端末・モバイルポリシーの変更", "device and mobile policy changed"),
    "release.request": ("原本の受け取り申請", "original requested"),
    "release.approve": ("原本の受け取り承認", "original released"),
    "release.reject": ("原本の受け取り却下", "original release rejected"),
    "outbound.request": ("外部(インターネット接続系)への送付申請", "outbound transfer requested"),
    "outbound.approve": ("外部への送付承認", "outbound transfer approved"),
    "outbound.reject": ("外部への送付却下", "outbound transfer rejected"),
    "audit.export": ("監査ログの出力", "audit log exported"),
    "audit.verify": ("監査ログの検証", "audit log verified"),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, from where: the audit log's view of a request (or of the system)."""

    user_id: int | None
    login: str
    org_id: int | None
    side: str | None
    address: str


SYSTEM = Actor(None, "system", None, None, "")


def cli_actor(org_id: int | None) -> Actor:
    """An administrator at the server's command line (``kakehashi admin …``, ``audit …``)."""
    return Actor(None, "cli", org_id, None, "")


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    org_id: int | None,
    actor_id: int | None,
    actor_login: str,
    side: str | None,
    address: str,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any],
) -> str:
    """The hash of one entry: its content in a canonical JSON form, chained to the previous."""
    content = json.dumps(
        [
            seq,
            at.isoformat(timespec="microseconds"),
            org_id,
            actor_id,
            actor_login,
            side,
            address,
            action,
            target_type,
            target_id,
            details,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        entry.prev_hash,
        seq=entry.seq,
        at=entry.at,
        org_id=entry.org_id,
        actor_id=entry.actor_id,
        actor_login=entry.actor_login,
        side=entry.side,
        address=entry.address,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        details=entry.details,
    )


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    target_type: str = "",
    target_id: str | int = "",
    details: dict[str, Any] | None = None,
    org_id: int | None = None,
) -> AuditEntry:
    """Append one entry in the caller's (write) transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    head = await session.get(AuditHead, HEAD_ID, populate_existing=True)
    prev_hash, seq = (head.hash, head.seq + 1) if head is not None else (GENESIS_HASH, 1)
    # Microseconds are what both databases keep; the hash must survive the round trip.
    at = utcnow()
    # JSON round trip: the hash is computed over what the database will give back.
    clean_details: dict[str, Any] = json.loads(json.dumps(details or {}, ensure_ascii=False))
    entry = AuditEntry(
        seq=seq,
        at=at,
        org_id=org_id if org_id is not None else actor.org_id,
        actor_id=actor.user_id,
        actor_login=actor.login[:64],
        side=actor.side,
        address=actor.address[:64],
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        details=clean_details,
        prev_hash=prev_hash,
        hash="",
    )
    entry.hash = hash_of(entry)
    session.add(entry)
    if head is None:
        session.add(AuditHead(id=HEAD_ID, seq=seq, hash=entry.hash))
    else:
        head.seq, head.hash = seq, entry.hash
    await session.flush()
    return entry


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """One entry as stored (the fields its hash covers, and the hashes): the JSON Lines export
    and the search API give exactly this, so anyone can recompute the chain from it."""
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "org_id": entry.org_id,
        "actor_id": entry.actor_id,
        "actor_login": entry.actor_login,
        "side": entry.side,
        "address": entry.address,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def action_label(action: str, lang: str = "ja") -> str:
    labels = ACTION_LABELS.get(action)
    if labels is None:
        return action
    return labels[0] if lang == "ja" else labels[1]


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One place where the chain does not hold, named by the entry's number (``seq``)."""

    seq: int
    # hash_mismatch, missing, chain_broken, tail_missing, head_mismatch, head_missing
    code: str
    message: str
    message_en: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }


@dataclass(slots=True)
class Verification:
    """What :func:`verify` found: ``ok`` when every entry and the head hold."""

    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0  # every problem found; ``problems`` lists the first ones
    # Told of every problem as it is found (the CLI prints them all, however many).
    on_problem: Callable[[Problem], None] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < VERIFY_MAX_PROBLEMS:
            self.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem_count": self.problem_count,
            "problems": [p.to_dict() for p in self.problems],
        }


def _span_ja(first: int, last: int) -> str:
    return f"{first}番" if first == last else f"{first}〜{last}番"


def _span_en(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first} to {last}"


def _missing(first: int, last: int) -> Problem:
    verb = "is" if first == last else "are"
    return Problem(
        first,
        "missing",
        f"{_span_ja(first, last)}の記録がありません(削除されています)。",
        f"{_span_en(first, last)} {verb} missing (deleted).",
    )


def _hash_mismatch(seq: int) -> Problem:
    return Problem(
        seq,
        "hash_mismatch",
        f"{seq}番の記録の内容が書き換えられています(ハッシュが一致しません)。",
        f"entry {seq}: content changed (hash mismatch).",
    )


def _chain_broken(seq: int, prev: int) -> Problem:
    return Problem(
        seq,
        "chain_broken",
        f"{seq}番の記録が直前の{prev}番の記録につながっていません(並べ替えまたは差し替えの疑い)。",
        f"entry {seq}: does not follow entry {prev} (prev_hash does not match: reordered "
        "or replaced).",
    )


@asynccontextmanager
async def _snapshot(db: Database) -> AsyncIterator[AsyncSession]:
    """One read-only transaction that sees the log as it was when it began: entries appended
    meanwhile are neither walked nor compared with a head that predates them."""
    async with db.read_engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with conn.begin():  # on SQLite the read engine begins a snapshot (chat.db)
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session


async def verify(
    source: Database | AsyncSession,
    *,
    batch_rows: int = VERIFY_BATCH_ROWS,
    on_problem: Callable[[Problem], None] | None = None,
) -> Verification:
    """Walk the whole chain in order, a batch at a time, and name every entry that does not
    hold: content changed (its hash), missing (a gap in the numbers), reordered or replaced
    (its ``prev_hash`` is not the hash of the entry before it), and a tail cut off or a head
    that does not match the last entry.  ``on_problem`` hears of each as it is found."""
    result = Verification(on_problem=on_problem)
    if isinstance(source, AsyncSession):
        return await _verify_in(source, batch_rows, result)
    async with _snapshot(source) as session:
        return await _verify_in(session, batch_rows, result)


async def _verify_in(session: AsyncSession, batch_rows: int, result: Verification) -> Verification:
    head = (await session.execute(select(AuditHead.seq, AuditHead.hash))).first()
    if head is not None:
        result.head_seq, result.head_hash = head.seq, head.hash
    expected, prev_hash, last_seq = 1, GENESIS_HASH, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > last_seq)
                .order_by(AuditEntry.seq)
                .limit(batch_rows)
            )
        ).all()
        if not rows:
            break
        for entry in rows:
            result.count += 1
            if result.first_seq is None:
                result.first_seq = entry.seq
            gap = entry.seq != expected
            if gap:
                result.add(_missing(expected, entry.seq - 1))
            if hash_of(entry) != entry.hash:
                result.add(_hash_mismatch(entry.seq))
            # After a gap the previous entry is unknown: the gap itself is the problem.
            if not gap and entry.prev_hash != prev_hash:
                result.add(_chain_broken(entry.seq, entry.seq - 1))
            expected, prev_hash, last_seq = entry.seq + 1, entry.hash, entry.seq
        session.expunge_all()  # a batch at a time, however long the log
        # SQLite's calls run inline on the loop (chat/db.py): let the server breathe.
        await asyncio.sleep(0)
    result.last_seq = last_seq or None
    _check_head(result, last_seq, prev_hash)
    return result


def _check_head(result: Verification, last_seq: int, last_hash: str) -> None:
    head_seq, head_hash = result.head_seq, result.head_hash
    if head_seq is None:
        if last_seq:
            result.add(
                Problem(
                    last_seq,
                    "head_missing",
                    f"最終記録の控え(audit_head)がありません(記録は{last_seq}番まであります)。",
                    f"entry {last_seq}: the head (audit_head) is missing; the log ends at "
                    f"entry {last_seq}.",
                )
            )
        return
    if last_seq < head_seq:
        first = last_seq + 1
        verb = "is" if first == head_seq else "are"
        result.add(
            Problem(
                first,
                "tail_missing",
                f"末尾の{_span_ja(first, head_seq)}の記録がありません"
                f"(記録は{last_seq}番で終わっていますが、最終記録の控えは{head_seq}番です)。",
                f"{_span_en(first, head_seq)} {verb} missing from the end: the log ends at "
                f"entry {last_seq} but its head records entry {head_seq} (head mismatch).",
            )
        )
    elif last_seq > head_seq:
        result.add(
            Problem(
                head_seq + 1,
                "head_mismatch",
                f"{_span_ja(head_seq + 1, last_seq)}の記録が最終記録の控え({head_seq}番)より"
                "後にあります。",
                f"{_span_en(head_seq + 1, last_seq)}: after the head, which records entry "
                f"{head_seq} (head mismatch).",
            )
        )
    elif last_hash != head_hash:
        result.add(
            Problem(
                last_seq,
                "head_mismatch",
                f"{last_seq}番の記録のハッシュが最終記録の控えと一致しません。",
                f"entry {last_seq}: its hash is not the one the head records (head mismatch).",
            )
        )


# --- search ----------------------------------------------------------------------------------

_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")
# "+09:00" in a query string typed by hand arrives as " 09:00".
_SPACE_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def _bad(message: str, message_en: str, code: str, **details: Any) -> BadRequest:
    return BadRequest(message, message_en, code=code, details=details)


def parse_time(untrusted: str | None, name: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 time (without an offset: Japan time) or a date, as UTC.

    A date alone is midnight Japan time; with ``end_of_day`` (an ``until``) it means the end of
    that day, so ``until=2026-04-30`` includes all of 30 April."""
    if untrusted is None or not untrusted.strip():
        return None
    value = untrusted.strip()
    try:
        if _DATE_ONLY.fullmatch(value):
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), JST)
            if end_of_day:
                moment += timedelta(days=1)
        else:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", value))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=JST)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad(
            f"{name}の日時の形式が正しくありません(例: 2026-04-01 または "
            "2026-04-01T09:00:00+09:00)。",
            f"{name}: not a date or an ISO 8601 time (e.g. 2026-04-01 or "
            "2026-04-01T09:00:00+09:00).",
            "invalid_date",
            field=name,
            value=value[:MAX_FILTER_CHARS],
        ) from None


def parse_range(
    untrusted_since: str | None, untrusted_until: str | None
) -> tuple[datetime | None, datetime | None]:
    """``since`` (inclusive) and ``until`` (exclusive; a date: through its end), checked."""
    since = parse_time(untrusted_since, "since")
    until = parse_time(untrusted_until, "until", end_of_day=True)
    if since is not None and until is not None and since >= until:
        raise _bad(
            "開始日時(since)は終了日時(until)より前にしてください。",
            "since must be before until.",
            "invalid_range",
            since=since.isoformat(),
            until=until.isoformat(),
        )
    return since, until


@dataclass(frozen=True, slots=True)
class Filters:
    """What to look for.  ``action`` ending in ``.`` or ``*`` is a prefix (``license.``)."""

    actor: str | None = None  # a login id, or a user id
    action: str | None = None
    side: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_type: str | None = None
    target_id: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        actor: str | None = None,
        action: str | None = None,
        side: str | None = None,
        since: str | None = None,
        until: str | None = None,
        target: str | None = None,
    ) -> Filters:
        """Filters from untrusted strings; ``target`` is ``type`` or ``type:id``."""
        for name, value in (("actor", actor), ("action", action), ("target", target)):
            if value is not None and len(value) > 2 * MAX_FILTER_CHARS:
                raise _bad(
                    f"{name}が長すぎます。", f"{name} is too long.", "invalid_input", field=name
                )
        if side is not None and side.strip() and side.strip() not in SIDES:
            raise _bad(
                "side は lgwan または internet で指定してください。",
                "side must be lgwan or internet.",
                "invalid_input",
                field="side",
            )
        target_type = target_id = None
        if target is not None and target.strip():
            kind, _, ident = target.strip().partition(":")
            target_type, target_id = kind or None, ident or None
        since_at, until_at = parse_range(since, until)
        return cls(
            actor=(actor or "").strip() or None,
            action=(action or "").strip() or None,
            side=(side or "").strip() or None,
            since=since_at,
            until=until_at,
            target_type=target_type,
            target_id=target_id,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.actor is not None:
            by_login = func.lower(AuditEntry.actor_login) == self.actor.lower()
            # Login ids may be digits (employee numbers): a number matches either.
            if self.actor.isdecimal() and int(self.actor) < MAX_SEQ:
                found.append(or_(AuditEntry.actor_id == int(self.actor), by_login))
            else:
                found.append(by_login)
        if self.action is not None:
            if self.action.endswith(("*", ".")):
                prefix = self.action.rstrip("*")
                found.append(AuditEntry.action.startswith(prefix, autoescape=True))
            else:
                found.append(AuditEntry.action == self.action)
        if self.side is not None:
            found.append(AuditEntry.side == self.side)
        if self.since is not None:
            found.append(AuditEntry.at >= self.since)
        if self.until is not None:
            found.append(AuditEntry.at < self.until)
        if self.target_type is not None:
            found.append(AuditEntry.target_type == self.target_type)
        if self.target_id is not None:
            found.append(AuditEntry.target_id == self.target_id)
        return found


def _scoped(query: Select[Any], org_id: int | None) -> Select[Any]:
    """An organisation sees its own entries and those that belong to none (a failed sign-in
    with an unknown login id, the system's own acts); ``None``: the whole log (the CLI)."""
    if org_id is None:
        return query
    return query.where(or_(AuditEntry.org_id == org_id, AuditEntry.org_id.is_(None)))


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[AuditEntry]
    next_before_seq: int | None  # pass as ``before_seq`` for the next (older) page

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [entry_dict(e) for e in self.entries],
            "next_before_seq": self.next_before_seq,
        }


def check_limit(limit: int) -> int:
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise _bad(
            f"件数(limit)は1〜{SEARCH_MAX_LIMIT}で指定してください。",
            f"limit must be between 1 and {SEARCH_MAX_LIMIT}.",
            "invalid_input",
            field="limit",
        )
    return limit


async def search(
    session: AsyncSession,
    org_id: int | None,
    filters: Filters,
    *,
    before_seq: int | None = None,
    limit: int = SEARCH_DEFAULT_LIMIT,
) -> Page:
    """Entries matching ``filters``, newest first; a page ends where ``next_before_seq`` says
    the next one begins, so paging through is complete and never shows an entry twice."""
    check_limit(limit)
    if before_seq is not None and not 0 < before_seq < MAX_SEQ:
        raise _bad(
            "before_seq の値が正しくありません。",
            "before_seq is out of range.",
            "invalid_input",
            field="before_seq",
        )
    query = _scoped(select(AuditEntry), org_id).where(*filters.conditions())
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    rows = list(
        (await session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit + 1))).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].seq if more else None)


# --- export ----------------------------------------------------------------------------------

CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    # (日本語の見出し, English header)
    ("連番", "seq"),
    ("日時(日本時間)", "time_jst"),
    ("日時(UTC)", "time_utc"),
    ("操作", "action"),
    ("操作内容", "action_label"),
    ("実行者ID", "actor_id"),
    ("実行者", "actor_login"),
    ("接続系", "side"),
    ("接続元アドレス", "address"),
    ("対象種別", "target_type"),
    ("対象ID", "target_id"),
    ("詳細", "details"),
    ("組織ID", "org_id"),
    ("直前のハッシュ", "prev_hash"),
    ("ハッシュ", "hash"),
)
# A cell Excel would run as a formula (CSV injection: a login id typed at a failed sign-in is
# anyone's text) gets a leading apostrophe; the JSON Lines export keeps every value as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def check_format(untrusted: str | None) -> ExportFormat:
    value = (untrusted or "csv").strip().lower()
    for known in EXPORT_FORMATS:
        if value == known:
            return known
    raise _bad(
        "出力形式(format)は csv または jsonl で指定してください。",
        "format must be csv or jsonl.",
        "invalid_format",
        format=value[:MAX_FILTER_CHARS],
    )


def check_lang(untrusted: str | None) -> str:
    value = (untrusted or "ja").strip().lower()
    if value not in ("ja", "en"):
        raise _bad(
            "言語(lang)は ja または en で指定してください。",
            "lang must be ja or en.",
            "invalid_input",
            field="lang",
        )
    return value


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    cell = str(value)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_row(entry: AuditEntry, lang: str) -> list[str]:
    side_names = SIDE_NAMES_JA if lang == "ja" else SIDE_NAMES_EN
    at = entry.at
    values: list[Any] = [
        entry.seq,
        at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S"),
        at.isoformat(timespec="microseconds"),
        entry.action,
        action_label(entry.action, lang),
        entry.actor_id,
        entry.actor_login,
        side_names.get(entry.side or "", entry.side or ""),
        entry.address,
        entry.target_type,
        entry.target_id,
        json.dumps(entry.details, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        entry.org_id,
        entry.prev_hash,
        entry.hash,
    ]
    return [csv_cell(v) for v in values]


async def iter_entries(
    db: Database,
    *,
    org_id: int | None,
    since: datetime | None = None,
    until: datetime | None = None,
    up_to_seq: int | None = None,
    batch_rows: int = EXPORT_BATCH_ROWS,
) -> AsyncIterator[AuditEntry]:
    """Entries in order, a batch per short read transaction (a slow download holds no
    transaction open); ``up_to_seq`` fixes the end, so entries appended meanwhile stay out."""
    filters = Filters(since=since, until=until)
    last = 0
    while True:
        query = _scoped(select(AuditEntry), org_id).where(
            AuditEntry.seq > last, *filters.conditions()
        )
        if up_to_seq is not None:
            query = query.where(AuditEntry.seq <= up_to_seq)
        async with db.read_sessions() as session:
            rows = (await session.scalars(query.order_by(AuditEntry.seq).limit(batch_rows))).all()
        if not rows:
            return
        for entry in rows:
            yield entry
        last = rows[-1].seq
        await asyncio.sleep(0)  # SQLite's calls run inline on the loop (chat/db.py)


async def export_chunks(
    db: Database,
    fmt: ExportFormat,
    *,
    org_id: int | None,
    since: datetime | None = None,
    until: datetime | None = None,
    lang: str = "ja",
    up_to_seq: int | None = None,
) -> AsyncIterator[bytes]:
    """The export as a stream of bytes, encoded a batch at a time.

    ``csv``: UTF-8 with a BOM and CRLF line ends (what Excel opens as Japanese), headers in
    ``lang``; times in Japan time and in UTC.  ``jsonl``: one :func:`entry_dict` per line."""
    entries = iter_entries(db, org_id=org_id, since=since, until=until, up_to_seq=up_to_seq)
    if fmt == "jsonl":
        lines: list[str] = []
        async for entry in entries:
            lines.append(json.dumps(entry_dict(entry), ensure_ascii=False, sort_keys=True))
            if len(lines) >= EXPORT_BATCH_ROWS:
                yield ("\n".join(lines) + "\n").encode()
                lines.clear()
        if lines:
            yield ("\n".join(lines) + "\n").encode()
        return
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([ja if lang == "ja" else en for ja, en in CSV_COLUMNS])
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    rows = 0
    async for entry in entries:
        writer.writerow(csv_row(entry, lang))
        rows += 1
        if rows >= EXPORT_BATCH_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            rows = 0
    if rows:
        yield buffer.getvalue().encode()


def export_filename(
    fmt: ExportFormat, since: datetime | None, until: datetime | None, *, lang: str = "en"
) -> str:
    """``kakehashi-audit-20260401-20260430.csv`` (``lang="ja"``: ``監査ログ-…``); the dates
    are the first and the last day included, in Japan time."""

    def day(moment: datetime | None, *, end: bool) -> str:
        if moment is None:
            return "all"
        local = moment.astimezone(JST)
        if end and local.time() == datetime.min.time():
            local -= timedelta(days=1)  # ``until`` is exclusive; name the last day included
        return local.strftime("%Y%m%d")

    span = f"{day(since, end=False)}-{day(until, end=True)}"
    if since is None and until is None:
        span = "all"
    stem = "監査ログ" if lang == "ja" else "kakehashi-audit"
    return f"{stem}-{span}.{fmt}"
