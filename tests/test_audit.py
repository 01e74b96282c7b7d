"""The audit log: what is recorded and by whom, search, export (CSV / JSON Lines), and tamper
detection by ``kakehashi audit verify`` run as a real process against the test's database."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from chat import audit
from chat.auth import JST
from chat.models import AuditEntry, AuditHead
from tests.clirun import kakehashi
from tests.harness import PASSWORD, World, error_of

AuditRows = list[dict[str, Any]]


async def search(world: World, **params: Any) -> AuditRows:
    """Every entry matching ``params``, newest first, paged through ``next_before_seq``."""
    found: AuditRows = []
    query = {k: v for k, v in params.items() if v is not None}
    while True:
        r = await world["admin"].api.get("/api/admin/audit", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        found.extend(page["entries"])
        if page["next_before_seq"] is None:
            return found
        query["before_seq"] = page["next_before_seq"]


async def login(world: World, login_id: str, password: str, side: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.server.url_for(side)) as client:
        return await client.post(
            "/api/auth/login", json={"login_id": login_id, "password": password}
        )


async def export(world: World, **params: str) -> httpx.Response:
    r = await world["admin"].api.get("/api/admin/audit/export", params=params)
    assert r.status_code == 200, r.text
    return r


def jsonl(body: bytes) -> AuditRows:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().splitlines()]


def chain_holds(rows: AuditRows) -> bool:
    """Recompute every hash of an export from its own lines (no database needed)."""
    prev = audit.GENESIS_HASH
    for row in rows:
        fields = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
        fields["at"] = datetime.fromisoformat(fields["at"])
        if row["prev_hash"] != prev or audit.entry_hash(row["prev_hash"], **fields) != row["hash"]:
            return False
        prev = row["hash"]
    return True


async def db_rows(world: World) -> list[AuditEntry]:
    assert world.server.services is not None
    async with world.server.services.db.session() as s:
        return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all())


async def tamper(world: World, *statements: Any) -> None:
    assert world.server.services is not None
    async with world.server.services.db.session() as s:
        for statement in statements:
            await s.execute(statement)


async def test_sign_in_success_and_failure_recorded_with_side_and_address(world: World) -> None:
    alice = world["alice"]
    failed = await login(world, "alice", "wrong-password-1", "lgwan")
    error_of(failed, 401, "invalid_credentials")
    assert (await login(world, "alice", PASSWORD, "lgwan")).status_code == 200
    error_of(
        await login(world, "nobody.here", "whatever-1", "internet"), 401, "invalid_credentials"
    )

    failures = await search(world, action="auth.sign_in_failed")
    assert [(e["actor_login"], e["side"]) for e in failures] == [
        ("nobody.here", "internet"),
        ("alice", "lgwan"),
    ]
    mine = failures[1]
    assert mine["actor_id"] == alice.id and mine["address"] == "127.0.0.1"
    assert mine["details"]["reason"] == "invalid_credentials"
    assert failures[0]["actor_id"] is None and failures[0]["org_id"] is None

    signed_in = await search(world, action="auth.sign_in", actor="alice")
    # the fixture's sign-in on the internet side, then this one on the LGWAN side
    assert [e["side"] for e in signed_in] == ["lgwan", "internet"]
    assert all(e["address"] == "127.0.0.1" and e["target_type"] == "session" for e in signed_in)
    assert [e["seq"] for e in await search(world, actor=str(alice.id), side="lgwan")] == [
        signed_in[0]["seq"],
        mine["seq"],
    ]


async def test_license_and_role_changes_recorded_with_who_did_it(world: World) -> None:
    admin, bob, carol = world["admin"], world["bob"], world["carol"]
    r = await admin.api.post(
        "/api/admin/licenses/revoke", json={"side": "lgwan", "user_ids": [bob.id]}
    )
    assert r.status_code == 200, r.text
    r = await admin.api.patch(f"/api/admin/users/{carol.id}", json={"role": "supervisor"})
    assert r.status_code == 200, r.text
    r = await admin.api.patch(f"/api/admin/users/{carol.id}", json={"title": "主任"})
    assert r.status_code == 200, r.text

    (revoked,) = await search(world, action="license.revoke")
    assert revoked["actor_login"] == "admin" and revoked["actor_id"] == admin.id
    assert revoked["side"] == "internet" and revoked["address"] == "127.0.0.1"
    assert revoked["target_type"] == "user" and revoked["target_id"] == str(bob.id)
    assert revoked["details"]["side"] == "lgwan"

    (role,) = await search(world, action="user.role_change")
    assert role["actor_login"] == "admin" and role["target_id"] == str(carol.id)
    assert role["details"]["changes"] == {"role": {"before": "member", "after": "supervisor"}}
    (title,) = await search(world, action="user.update", target=f"user:{carol.id}")
    assert title["details"]["changes"] == {"title": {"before": "", "after": "主任"}}
    # the prefix finds the whole family, and only it
    licenses = await search(world, action="license.")
    assert licenses and {e["action"].split(".")[0] for e in licenses} == {"license"}
    assert revoked in licenses and all(e["action"] != "user.role_change" for e in licenses)


async def test_every_administrative_act_is_recorded(world: World) -> None:
    admin, alice = world["admin"].api, world["alice"]
    dept = (await admin.post("/api/admin/departments", json={"name": "監査課"})).json()
    assert (
        await admin.patch(f"/api/admin/departments/{dept['id']}", json={"name": "監査室"})
    ).status_code == 200
    made = await admin.post(
        "/api/admin/users",
        json={"login_id": "kansa", "display_name": "監査 花子", "role": "member"},
    )
    assert made.status_code == 201, made.text
    kansa = made.json()["id"]
    assert (
        await admin.post(f"/api/admin/users/{kansa}/password", json={"password": "Reset-pass-2026"})
    ).status_code == 200
    assert (
        await alice.api.post(
            f"/api/admin/users/{alice.id}/password", json={"password": "Own-choice-2026"}
        )
    ).status_code == 200
    assert (await admin.post(f"/api/admin/users/{kansa}/deactivate")).status_code == 200
    assert (await admin.post(f"/api/admin/users/{kansa}/reactivate")).status_code == 200
    assert (
        await admin.put("/api/admin/password-policy", json={"min_length": 12, "min_classes": 3})
    ).status_code == 200
    imported = await admin.post(
        "/api/admin/users/import",
        content="login_id,display_name\nimp.one,一号\nimp.two,二号\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text

    by_action = {e["action"]: e for e in await search(world, actor="admin")}
    assert by_action["department.create"]["details"]["name"] == "監査課"
    assert by_action["department.rename"]["details"] == {"before": "監査課", "after": "監査室"}
    assert by_action["user.create"]["details"]["login_id"] == "kansa"
    assert by_action["user.password_reset"]["target_id"] == str(kansa)
    assert by_action["user.deactivate"]["target_id"] == str(kansa)
    assert by_action["user.reactivate"]["target_id"] == str(kansa)
    assert by_action["policy.password"]["details"]["after"] == {"min_length": 12, "min_classes": 3}
    assert by_action["user.import"]["details"] == {"count": 2, "login_ids": ["imp.one", "imp.two"]}
    everything = json.dumps(await search(world), ensure_ascii=False)
    assert all(secret not in everything for secret in ("Reset-pass", "Own-choice", PASSWORD))
    # one entry for the whole file, none per row
    assert not [
        e
        for e in await search(world, action="user.create")
        if e["details"]["login_id"][:4] == "imp."
    ]
    (own,) = await search(world, action="user.password_change")
    assert own["actor_login"] == "alice" and own["target_id"] == str(alice.id)

    # the administrator's command line is on the record too, as "cli"
    done = await kakehashi(world.server.settings, "admin", "create-department", "文書課")
    assert done.code == 0, done.err
    (by_cli,) = await search(world, actor="cli")
    assert by_cli["action"] == "department.create" and by_cli["details"]["name"] == "文書課"
    assert by_cli["actor_id"] is None and by_cli["side"] is None
    # an act that fails leaves no entry
    before = len(await search(world))
    r = await admin.put("/api/admin/password-policy", json={"min_length": 2, "min_classes": 9})
    error_of(r, 400, "invalid_input")
    assert len(await search(world)) == before


async def test_search_filters_and_complete_paging(world: World) -> None:
    for name in ("alice", "bob"):
        error_of(await login(world, name, "not-the-password", "lgwan"), 401, "invalid_credentials")
    everything = await search(world, limit=500)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs)) > 10

    # paging: complete, in order, never twice
    paged: AuditRows = []
    for limit in (1, 3, 7):
        paged = await search(world, limit=limit)
        assert [e["seq"] for e in paged] == seqs

    # date range: since inclusive, until exclusive, given in any offset
    times = sorted({datetime.fromisoformat(e["at"]) for e in everything})
    since, until = times[2], times[-3]
    expected = [e["seq"] for e in everything if since <= datetime.fromisoformat(e["at"]) < until]
    got = await search(world, since=since.astimezone(JST).isoformat(), until=until.isoformat())
    assert [e["seq"] for e in got] == expected and expected
    today = datetime.now(JST).date()
    assert len(await search(world, since=today.isoformat(), until=today.isoformat())) == len(seqs)
    assert await search(world, until=(today - timedelta(days=1)).isoformat()) == []

    # side and action prefix together
    lgwan_failures = await search(world, side="lgwan", action="auth.")
    assert {e["actor_login"] for e in lgwan_failures} == {"alice", "bob"}
    assert {e["action"] for e in lgwan_failures} == {"auth.sign_in_failed"}
    assert all(e["action"].startswith("license.") for e in await search(world, action="license.*"))
    assert await search(world, action="license") == []  # exact: no such action

    # bad input: a clear error in both languages
    admin = world["admin"].api
    for params, code in (
        ({"since": "yesterday"}, "invalid_date"),
        ({"until": "2026-13-40"}, "invalid_date"),
        ({"since": "2026-04-02", "until": "2026-04-01"}, "invalid_range"),
        ({"limit": "501"}, "invalid_input"),
        ({"limit": "0"}, "invalid_input"),
        ({"side": "moon"}, "invalid_input"),
        ({"before_seq": str(2**70)}, "invalid_input"),
    ):
        error_of(await admin.get("/api/admin/audit", params=params), 400, code)
    assert await search(world, actor="9" * 30) == await search(world, actor="²") == []


async def test_csv_export_for_excel_and_jsonl_with_hashes(world: World) -> None:
    # a login id that Excel would run as a formula
    error_of(await login(world, "=1+2", "whatever-1", "internet"), 401, "invalid_credentials")
    r = await export(world, format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="kakehashi-audit-all.csv"')
    assert "filename*=UTF-8''%E7%9B%A3%E6%9F%BB%E3%83%AD%E3%82%B0-all.csv" in disposition
    raw = r.content
    assert raw.startswith(codecs.BOM_UTF8)
    assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF line ends only
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    header, rows = table[0], table[1:]
    assert header[:5] == ["連番", "日時(日本時間)", "日時(UTC)", "操作", "操作内容"]
    assert header[-2:] == ["直前のハッシュ", "ハッシュ"]

    lines = jsonl((await export(world, format="jsonl")).content)
    assert lines[-1]["action"] == "audit.export" and lines[-2]["action"] == "audit.export"
    assert lines[-1]["details"]["format"] == "jsonl"
    assert chain_holds(lines)  # the whole log, from entry 1: checkable offline
    # the CSV holds the same entries (up to its own record, the last line of each)
    assert len(rows) == len(lines) - 1
    for row, line in zip(rows, lines, strict=False):
        cells = dict(zip(header, row, strict=True))
        assert int(cells["連番"]) == line["seq"]
        assert cells["ハッシュ"] == line["hash"] and cells["直前のハッシュ"] == line["prev_hash"]
        assert cells["操作"] == line["action"]
        at = datetime.fromisoformat(line["at"])
        assert cells["日時(UTC)"] == line["at"]
        assert cells["日時(日本時間)"] == at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")
        assert json.loads(cells["詳細"]) == line["details"]
        if line["actor_login"] == "=1+2":
            assert cells["実行者"] == "'=1+2"  # neutralised for Excel; the JSON keeps it as is
        else:
            assert cells["実行者"] == line["actor_login"]
        if line["side"] == "internet":
            assert cells["接続系"] == "インターネット接続系"
    assert rows[-1][3] == "audit.export" and rows[-1][4] == "監査ログの出力"

    english = (await export(world, format="csv", lang="en")).content.decode("utf-8-sig")
    assert english.startswith("seq,time_jst,time_utc,action,action_label,")

    # a period: today's entries only, named by its days
    today = datetime.now(JST).date().isoformat()
    r = await export(world, format="jsonl", since=today, until=today)
    stamp = today.replace("-", "")
    assert f'filename="kakehashi-audit-{stamp}-{stamp}.jsonl"' in r.headers["content-disposition"]
    assert [e["seq"] for e in jsonl(r.content)][: len(lines)] == [e["seq"] for e in lines]
    yesterday = (datetime.now(JST).date() - timedelta(days=1)).isoformat()
    assert (await export(world, format="csv", until=yesterday)).content.count(b"\r\n") == 1

    exports = await search(world, action="audit.export")
    assert len(exports) == 5 and all(e["actor_login"] == "admin" for e in exports)
    admin = world["admin"].api
    for params, code in (
        ({"format": "xml"}, "invalid_format"),
        ({"format": "csv", "since": "2026-04-02", "until": "2026-04-01"}, "invalid_range"),
        ({"format": "csv", "since": "2026/04/01"}, "invalid_date"),
        ({"format": "csv", "lang": "fr"}, "invalid_input"),
    ):
        error_of(await admin.get("/api/admin/audit/export", params=params), 400, code)
    assert len(await search(world, action="audit.export")) == 5  # refused: not exported


async def test_only_administrators_read_the_audit_log(world: World) -> None:
    for name in ("alice", "bob"):
        api = world[name].api
        for path in ("/api/admin/audit", "/api/admin/audit/export", "/api/admin/audit/verify"):
            error_of(await api.get(path), 403, "forbidden")
    async with httpx.AsyncClient(base_url=world.server.url) as anonymous:
        error_of(await anonymous.get("/api/admin/audit"), 401, "not_authenticated")
    assert await search(world, action="audit.") == []


async def test_verify_endpoint_reports_and_is_recorded(world: World) -> None:
    r = await world["admin"].api.get("/api/admin/audit/verify")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["ok"] and result["problems"] == [] and result["first_seq"] == 1
    assert result["count"] == result["last_seq"] == result["head_seq"]
    (verified,) = await search(world, action="audit.verify")
    assert verified["details"]["ok"] is True and verified["seq"] == result["head_seq"] + 1

    rows = await db_rows(world)
    victim = rows[len(rows) // 2].seq
    await tamper(
        world,
        update(AuditEntry).where(AuditEntry.seq == victim).values(details={"forged": True}),
    )
    result = (await world["admin"].api.get("/api/admin/audit/verify")).json()
    assert not result["ok"] and result["problem_count"] == 1
    (problem,) = result["problems"]
    assert problem["seq"] == victim and problem["code"] == "hash_mismatch"
    assert str(victim) in problem["message"] and f"entry {victim}" in problem["message_en"]


async def verify_cli(world: World, *, intact: bool = False) -> list[str]:
    """``kakehashi audit verify``'s lines, having checked its exit status and summary."""
    done = await kakehashi(world.server.settings, "audit", "verify")
    out = done.out.splitlines()
    assert done.code == (0 if intact else 1) and out, (done.code, done.out, done.err)
    assert ("audit log intact" if intact else "audit log NOT intact") in out[-1], out
    return out


async def test_cli_verify_names_an_entry_whose_content_changed(world: World) -> None:
    await verify_cli(world, intact=True)
    rows = await db_rows(world)
    victim = rows[len(rows) // 2]
    await tamper(
        world,
        update(AuditEntry)
        .where(AuditEntry.seq == victim.seq)
        .values(details={**victim.details, "note": "nothing happened"}),
    )
    out = await verify_cli(world)
    assert out[0].startswith(f"entry {victim.seq}: content changed (hash mismatch)")
    assert "audit log NOT intact: 1 problem(s)" in out[-1] and len(out) == 2


async def test_cli_verify_names_a_deleted_entry(world: World) -> None:
    rows = await db_rows(world)
    victim = rows[len(rows) // 2].seq
    await tamper(world, delete(AuditEntry).where(AuditEntry.seq == victim))
    out = await verify_cli(world)
    assert out[0].startswith(f"entry {victim} is missing"), out
    assert len(out) == 2


async def test_cli_verify_names_reordered_entries(world: World) -> None:
    rows = await db_rows(world)
    first, second = rows[3], rows[6]
    columns = [c for c in AuditEntry.__table__.columns.keys() if c != "seq"]

    def content(entry: AuditEntry) -> dict[str, Any]:
        return {c: getattr(entry, c) for c in columns}

    await tamper(
        world,
        update(AuditEntry).where(AuditEntry.seq == first.seq).values(**content(second)),
        update(AuditEntry).where(AuditEntry.seq == second.seq).values(**content(first)),
    )
    out = await verify_cli(world)
    named = "\n".join(out)
    for seq in (first.seq, second.seq):
        assert f"entry {seq}: content changed" in named
        assert f"entry {seq}: does not follow entry {seq - 1}" in named
    # the entries after each swapped one no longer follow it either
    assert f"entry {first.seq + 1}: does not follow" in named


async def test_cli_verify_names_a_tail_cut_off(world: World) -> None:
    rows = await db_rows(world)
    last = rows[-1].seq
    await tamper(world, delete(AuditEntry).where(AuditEntry.seq == last))
    out = await verify_cli(world)
    assert out[0].startswith(f"entry {last} is missing from the end"), out
    assert "head mismatch" in out[0] and f"head records entry {last}" in out[0]


async def test_verify_walks_in_batches_and_names_every_problem(world: World) -> None:
    services = world.server.services
    assert services is not None
    rows = await db_rows(world)
    assert len(rows) > 12
    intact = await audit.verify(services.db, batch_rows=4)
    assert intact.ok and intact.count == len(rows)
    # a gap of two right at a batch boundary, and a changed entry in the next batch
    await tamper(
        world,
        delete(AuditEntry).where(AuditEntry.seq.in_([4, 5])),
        update(AuditEntry).where(AuditEntry.seq == 9).values(actor_login="mallory"),
    )
    result = await audit.verify(services.db, batch_rows=4)
    assert [(p.seq, p.code) for p in result.problems] == [(4, "missing"), (9, "hash_mismatch")]
    assert result.problems[0].message_en == "entries 4 to 5 are missing (deleted)."
    assert result.count == len(rows) - 2
    # the head deleted too: named by the last entry
    await tamper(world, delete(AuditHead))
    result = await audit.verify(services.db, batch_rows=100)
    assert result.problems[-1].code == "head_missing" and result.problems[-1].seq == rows[-1].seq


async def test_cli_export_writes_csv_and_jsonl(world: World, tmp_path: Path) -> None:
    settings = world.server.settings
    out = tmp_path / "audit.jsonl"
    done = await kakehashi(settings, "audit", "export", "--format", "jsonl", "--output", str(out))
    assert done.code == 0, done.err
    lines = jsonl(out.read_bytes())
    assert chain_holds(lines)
    assert lines[-1]["action"] == "audit.export" and lines[-1]["actor_login"] == "cli"
    assert not (tmp_path / "audit.jsonl.part").exists()

    table = tmp_path / "audit.csv"
    today = datetime.now(JST).date().isoformat()
    done = await kakehashi(
        settings, "audit", "export", "--since", today, "--lang", "en", "-o", str(table)
    )
    assert done.code == 0, done.err
    raw = table.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    parsed = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [int(r["seq"]) for r in parsed] == [e["seq"] for e in lines] + [lines[-1]["seq"] + 1]
    assert [r["hash"] for r in parsed[:-1]] == [e["hash"] for e in lines]

    bad = await kakehashi(
        settings, "audit", "export", "--since", "2026-04-02", "--until", "2026-04-01"
    )
    assert bad.code == 2 and "invalid_range" in bad.err
    exports = await search(world, action="audit.export", actor="cli")
    assert len(exports) == 2


async def test_entries_appended_while_verifying_are_not_problems(world: World) -> None:
    services = world.server.services
    assert services is not None
    before = len(await db_rows(world))

    async def append(n: int) -> None:
        for i in range(n):
            async with services.unit() as uow:
                await audit.record(uow.session, audit.SYSTEM, "test.append", details={"i": i})

    writer = asyncio.create_task(append(20))
    result = await audit.verify(services.db, batch_rows=1)
    await writer
    assert result.ok, result.problems
    assert before <= result.count <= before + 20 and result.count == result.head_seq
    assert (await audit.verify(services.db)).count == before + 20
