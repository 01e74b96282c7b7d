"""CSV bulk import of users, accepting what Excel writes: UTF-8, UTF-8 with BOM, Shift_JIS
(CP932).  All or nothing: a file with any bad row imports nothing and every bad row is
reported by line and column.  One audit entry records the whole file (count and login ids)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from chat import audit
from chat.accounts import UserInput, generate_password, insert_user, user_field_errors
from chat.audit import Actor
from chat.errors import BadRequest, TooLarge
from chat.models import Department, Organisation, User
from chat.passwords import check_password_policy
from chat.settings import CSV_IMPORT_MAX_BYTES, CSV_IMPORT_MAX_ROWS
from chat.unit import Unit

# Column names as exported by hand-made Excel sheets (Japanese) or by the API (English).
HEADER_ALIASES: dict[str, str] = {
    "login_id": "login_id",
    "ログインid": "login_id",
    "ログインＩＤ": "login_id",
    "display_name": "display_name",
    "氏名": "display_name",
    "表示名": "display_name",
    "kana": "kana",
    "ふりがな": "kana",
    "フリガナ": "kana",
    "カナ": "kana",
    "department": "department",
    "所属": "department",
    "部署": "department",
    "title": "title",
    "役職": "title",
    "email": "email",
    "メール": "email",
    "メールアドレス": "email",
    "role": "role",
    "権限": "role",
    "password": "password",
    "パスワード": "password",
}
ROLE_ALIASES = {"管理者": "admin", "所属長": "supervisor", "監督者": "supervisor", "一般": "member"}
REQUIRED = ("login_id", "display_name")


@dataclass
class RowError:
    line: int
    column: str
    code: str
    message_en: str
    message: str  # Japanese

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }


# Japanese sentences for the field checks of ``accounts.user_field_errors``.
FIELD_JA = {
    "login_id": "ログインIDは半角英数字と . _ @ - の1〜64文字にしてください。",
    "display_name": "氏名は必須で、100文字以内です。",
    "kana": "ふりがなは100文字以内です。",
    "title": "役職は100文字以内です。",
    "email": "メールアドレスの形式が正しくありません。",
    "role": "権限は admin・supervisor・member(管理者・所属長・一般)のいずれかです。",
}


def csv_too_large() -> TooLarge:
    return TooLarge(
        f"CSVファイルは{CSV_IMPORT_MAX_BYTES // (1024 * 1024)} MiB以内にしてください。",
        f"The CSV file may be at most {CSV_IMPORT_MAX_BYTES // (1024 * 1024)} MiB.",
    )


def decode_csv(untrusted: bytes) -> str:
    if len(untrusted) > CSV_IMPORT_MAX_BYTES:
        raise csv_too_large()
    if untrusted.startswith(b"\xef\xbb\xbf"):
        return untrusted[3:].decode("utf-8", errors="strict")
    try:
        return untrusted.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return untrusted.decode("cp932")
    except UnicodeDecodeError:
        raise BadRequest(
            "CSVの文字コードを判別できません。UTF-8 または Shift_JIS で保存してください。",
            "Cannot read the CSV: save it as UTF-8 or Shift_JIS.",
            code="csv_invalid",
        ) from None


def csv_error(errors: list[RowError]) -> BadRequest:
    return BadRequest(
        f"CSVに{len(errors)}件の誤りがあるため、1件も登録していません。",
        f"The CSV has {len(errors)} error(s); nothing was imported.",
        code="csv_invalid",
        details={"errors": [e.to_dict() for e in errors]},
    )


async def _department_index(uow: Unit, org_id: int) -> tuple[dict[str, int], set[str]]:
    """Departments by code and by full path (``総務部/情報管理課``) and by unique name; and the
    names that several departments share (they need a path or a code)."""
    depts = list(
        (await uow.session.execute(select(Department).where(Department.org_id == org_id)))
        .scalars()
        .all()
    )
    by_id = {d.id: d for d in depts}
    index: dict[str, int] = {}
    names: dict[str, list[int]] = {}
    for d in depts:
        parts, node = [], d
        while node is not None:
            parts.append(node.name)
            node = by_id.get(node.parent_id) if node.parent_id else None  # type: ignore[assignment]
        index["/".join(reversed(parts))] = d.id
        names.setdefault(d.name, []).append(d.id)
        if d.code:
            index[d.code] = d.id
    for name, ids in names.items():
        if len(ids) == 1:
            index.setdefault(name, ids[0])
    return index, {name for name, ids in names.items() if len(ids) > 1} - set(index)


async def import_users(
    uow: Unit, org_id: int, untrusted: bytes, *, actor: Actor = audit.SYSTEM
) -> list[dict[str, Any]]:
    """Create every user of the file or none; returns the created users with any one-time
    passwords generated for rows that had none."""
    text = decode_csv(untrusted)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadRequest("CSVが空です。", "The CSV is empty.", code="csv_invalid") from None
    except csv.Error as exc:
        raise csv_error(
            [RowError(1, "", "csv_syntax", f"CSV syntax: {exc}", "CSVの形式が正しくありません。")]
        ) from None
    columns: list[str | None] = [
        HEADER_ALIASES.get(h.strip().lower()) or HEADER_ALIASES.get(h.strip()) for h in header
    ]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise csv_error(
            [
                RowError(
                    1,
                    c,
                    "missing_column",
                    "required column is missing",
                    f"必須の列「{c}」がありません。",
                )
                for c in missing
            ]
        )
    org = await uow.session.get(Organisation, org_id)
    assert org is not None
    departments, ambiguous = await _department_index(uow, org_id)
    existing = {
        login.lower()
        for login in (await uow.session.execute(select(func.lower(User.login_id)))).scalars()
    }
    errors: list[RowError] = []
    rows: list[tuple[UserInput, bool]] = []
    seen: dict[str, int] = {}
    line, last_line = 1, reader.line_num
    try:
        for record in reader:
            # A record is reported by its first line (a quoted cell may span several).
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= CSV_IMPORT_MAX_ROWS:
                errors.append(
                    RowError(
                        line,
                        "",
                        "too_many_rows",
                        f"more than {CSV_IMPORT_MAX_ROWS} rows",
                        f"一度に取り込めるのは{CSV_IMPORT_MAX_ROWS:,}行までです。",
                    )
                )
                break
            if len(record) > len(columns):
                errors.append(
                    RowError(
                        line,
                        "",
                        "too_many_cells",
                        "more cells than header columns",
                        "見出しの列より多くのセルがあります。",
                    )
                )
                continue
            cells: dict[str, str] = {}
            for name, value in zip(columns, record, strict=False):
                if name is not None:
                    cells[name] = value.strip()
            role = cells.get("role") or "member"
            data = UserInput(
                login_id=cells.get("login_id", ""),
                display_name=cells.get("display_name", ""),
                kana=cells.get("kana", ""),
                title=cells.get("title", ""),
                email=cells.get("email", ""),
                role=ROLE_ALIASES.get(role, role),
                password=cells.get("password") or None,
            )
            row_errors = [
                RowError(line, k, f"invalid_{k}", v, FIELD_JA.get(k, "値が正しくありません。"))
                for k, v in user_field_errors(data).items()
            ]
            dept = cells.get("department", "")
            if dept:
                if dept in ambiguous:
                    row_errors.append(
                        RowError(
                            line,
                            "department",
                            "ambiguous_department",
                            f"several departments are named {dept!r}: give the path "
                            "(部/課/係) or the code",
                            f"「{dept}」という部署が複数あります。部/課/係のパスかコードで"
                            "指定してください。",
                        )
                    )
                elif dept not in departments:
                    row_errors.append(
                        RowError(
                            line,
                            "department",
                            "unknown_department",
                            f"unknown department {dept!r}",
                            f"部署「{dept}」が見つかりません。",
                        )
                    )
                else:
                    data.department_id = departments[dept]
            key = data.login_id.lower()
            if key in existing:
                row_errors.append(
                    RowError(
                        line,
                        "login_id",
                        "login_id_taken",
                        "already exists",
                        f"ログインID「{data.login_id}」は既に使われています。",
                    )
                )
            elif key in seen:
                row_errors.append(
                    RowError(
                        line,
                        "login_id",
                        "duplicate_in_file",
                        f"duplicate of line {seen[key]} in this file",
                        f"{seen[key]}行目と同じログインIDです。",
                    )
                )
            seen.setdefault(key, line)
            if data.password is not None:
                try:
                    check_password_policy(org, data.password)
                except BadRequest as exc:
                    row_errors.append(
                        RowError(line, "password", "password_too_weak", exc.message_en, exc.message)
                    )
            errors.extend(row_errors)
            rows.append((data, data.password is None))
    except csv.Error as exc:
        errors.append(
            RowError(
                last_line + 1,
                "",
                "csv_syntax",
                f"CSV syntax: {exc}",
                "CSVの形式が正しくありません。",
            )
        )
    if errors:
        raise csv_error(errors)
    if not rows:
        raise BadRequest("CSVに行がありません。", "The CSV has no rows.", code="csv_invalid")
    created = []
    for data, generated in rows:
        if generated:
            data.password = generate_password()
        user = await insert_user(uow, org_id, data)
        created.append(
            {
                "id": user.id,
                "login_id": user.login_id,
                "initial_password": data.password if generated else None,
            }
        )
    await audit.record(
        uow.session,
        actor,
        "user.import",
        target_type="organisation",
        target_id=org_id,
        details={"count": len(created), "login_ids": [row["login_id"] for row in created]},
        org_id=org_id,
    )
    return created
