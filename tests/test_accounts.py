"""Organisation, departments, users (REST and CLI), sign-in, sessions, lockout, CSRF."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from chat.auth import JST, hash_token
from chat.errors import WS_CLOSE_REVOKED
from chat.models import AuthSession, Organisation, User, utcnow
from tests.clirun import kakehashi
from tests.harness import PASSWORD, World, Ws, error_of


async def login(world: World, login_id: str, password: str = PASSWORD) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.server.url) as client:
        return await client.post(
            "/api/auth/login", json={"login_id": login_id, "password": password}
        )


def bearer(world: World, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=world.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_departments_nest_bu_ka_kakari(world: World) -> None:
    admin = world["admin"].api
    bu = await admin.post("/api/admin/departments", json={"name": "総務部", "code": "100"})
    assert bu.status_code == 201, bu.text
    ka = await admin.post(
        "/api/admin/departments", json={"name": "情報管理課", "parent_id": bu.json()["id"]}
    )
    assert ka.status_code == 201, ka.text
    kakari = await admin.post(
        "/api/admin/departments", json={"name": "システム係", "parent_id": ka.json()["id"]}
    )
    assert kakari.status_code == 201, kakari.text
    listed = (await world["alice"].api.get("/api/admin/departments")).json()["departments"]
    by_name = {d["name"]: d for d in listed}
    assert by_name["総務部"]["parent_id"] is None and by_name["総務部"]["code"] == "100"
    assert by_name["情報管理課"]["parent_id"] == bu.json()["id"]
    assert by_name["システム係"]["parent_id"] == ka.json()["id"]

    renamed = await admin.patch(
        f"/api/admin/departments/{kakari.json()['id']}", json={"name": "基盤係"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "基盤係"
    # a member may read but not create; a code is unique; a parent must exist
    error_of(
        await world["alice"].api.post("/api/admin/departments", json={"name": "秘密部"}),
        403,
        "forbidden",
    )
    error_of(
        await admin.post("/api/admin/departments", json={"name": "別部", "code": "100"}),
        409,
        "already_exists",
    )
    error_of(
        await admin.post("/api/admin/departments", json={"name": "孤児課", "parent_id": 99999}),
        404,
        "not_found",
    )
    after = (await admin.get("/api/admin/departments")).json()["departments"]
    assert len(after) == 3


async def test_users_crud_over_rest(world: World) -> None:
    admin = world["admin"].api
    dept = (await admin.post("/api/admin/departments", json={"name": "福祉課"})).json()
    created = await admin.post(
        "/api/admin/users",
        json={
            "login_id": "tanaka.h",
            "display_name": "田中 花子",
            "kana": "たなか はなこ",
            "department_id": dept["id"],
            "title": "主任",
            "email": "tanaka@example.lg.jp",
            "role": "supervisor",
            "password": "Hanako-pass-2026",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["department_id"] == dept["id"] and user["role"] == "supervisor"
    assert user["kana"] == "たなか はなこ" and user["title"] == "主任" and user["is_active"]
    assert "password" not in user and "password_hash" not in user
    refused = await login(world, "tanaka.h", "Hanako-pass-2026")
    error_of(refused, 403, "license_required")  # a new user holds no license yet
    given = await admin.post(
        "/api/admin/licenses/assign", json={"side": "internet", "user_ids": [user["id"]]}
    )
    assert given.status_code == 200, given.text
    assert (await login(world, "tanaka.h", "Hanako-pass-2026")).status_code == 200

    patched = await admin.patch(
        f"/api/admin/users/{user['id']}", json={"title": "係長", "role": "member"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "係長" and patched.json()["role"] == "member"
    assert patched.json()["display_name"] == "田中 花子"
    listed = (await world["alice"].api.get("/api/admin/users")).json()["users"]
    assert {"tanaka.h", "alice", "admin"} <= {u["login_id"] for u in listed}

    # bad input is refused field by field and changes nothing
    bad = await admin.post(
        "/api/admin/users",
        json={"login_id": "bad id!", "display_name": " ", "email": "not-mail"},
    )
    fields = error_of(bad, 400, "invalid_input")["details"]["fields"]
    assert {"login_id", "display_name", "email"} <= set(fields)
    error_of(
        await admin.post("/api/admin/users", json={"login_id": "TANAKA.H", "display_name": "別人"}),
        409,
        "already_exists",
    )
    error_of(
        await admin.patch(f"/api/admin/users/{user['id']}", json={"department_id": 99999}),
        404,
        "not_found",
    )
    # only an administrator manages users
    error_of(
        await world["alice"].api.post(
            "/api/admin/users", json={"login_id": "evil", "display_name": "悪"}
        ),
        403,
        "forbidden",
    )
    error_of(
        await world["alice"].api.patch(f"/api/admin/users/{user['id']}", json={"role": "admin"}),
        403,
        "forbidden",
    )
    error_of(
        await world["alice"].api.get("/api/admin/users", params={"include_inactive": True}),
        403,
        "forbidden",
    )
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        users = list((await uow.session.execute(select(User.login_id, User.role))).all())
    assert ("tanaka.h", "member") in users
    assert not any(login_id in ("bad id!", "evil", "TANAKA.H") for login_id, _ in users)


async def test_passwords_are_argon2id_and_tokens_stored_hashed(world: World) -> None:
    services = world.server.services
    assert services is not None
    async with services.unit() as uow:
        hashes = list((await uow.session.execute(select(User.password_hash))).scalars())
        sessions = list((await uow.session.execute(select(AuthSession))).scalars())
    assert hashes and all(h and h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in "".join(h or "" for h in hashes)
    tokens = [p.token for p in world.people.values()]
    assert len(sessions) == len(tokens)
    stored = {
        str(getattr(s, c.key))
        for s in sessions
        for c in AuthSession.__table__.columns  # every column of every session row
    }
    for token in tokens:
        assert token not in stored and not any(token in value for value in stored)
        assert hash_token(token) in {s.token_hash for s in sessions}


async def test_password_policy_is_the_organisations(world: World) -> None:
    admin = world["admin"].api
    error_of(
        await world["alice"].api.put(
            "/api/admin/password-policy", json={"min_length": 20, "min_classes": 4}
        ),
        403,
        "forbidden",
    )
    error_of(
        await admin.put("/api/admin/password-policy", json={"min_length": 4, "min_classes": 1}),
        400,
        "invalid_input",
    )
    r = await admin.put("/api/admin/password-policy", json={"min_length": 14, "min_classes": 3})
    assert r.json() == {"min_length": 14, "min_classes": 3}
    weak = await admin.post(
        "/api/admin/users",
        json={"login_id": "weak", "display_name": "弱い", "password": "alllowercase-long"},
    )
    error = error_of(weak, 400, "password_too_weak")
    assert "14" in error["message"] and "14" in error["message_en"]
    short = await admin.post(
        "/api/admin/users",
        json={"login_id": "weak", "display_name": "弱い", "password": "Ab1-short"},
    )
    error_of(short, 400, "password_too_weak")
    ok = await admin.post(
        "/api/admin/users",
        json={"login_id": "strong", "display_name": "強い", "password": "Abcdefgh-12345"},
    )
    assert ok.status_code == 201, ok.text
    # changing one's own password follows the same rule
    alice = world["alice"]
    error_of(
        await alice.api.post(f"/api/admin/users/{alice.id}/password", json={"password": "Ab1"}),
        400,
        "password_too_weak",
    )
    changed = await alice.api.post(
        f"/api/admin/users/{alice.id}/password", json={"password": "Alice-new-pass-99"}
    )
    assert changed.status_code == 200
    assert (await login(world, "alice", "Alice-new-pass-99")).status_code == 200
    error_of(await login(world, "alice"), 401, "invalid_credentials")
    # nobody else's password
    error_of(
        await alice.api.post(
            f"/api/admin/users/{world['bob'].id}/password", json={"password": "Bob-taken-over-1"}
        ),
        403,
        "forbidden",
    )


async def test_deactivation_ends_sessions_at_once(world: World) -> None:
    admin, bob = world["admin"].api, world["bob"]
    second = (await login(world, "bob")).json()["token"]
    ws = await Ws.connect(world.server, bob.token)
    assert (await bob.api.get("/api/auth/me")).status_code == 200

    r = await admin.post(f"/api/admin/users/{bob.id}/deactivate")
    assert r.status_code == 200 and r.json()["is_active"] is False
    error_of(await bob.api.get("/api/auth/me"), 401, "session_expired")
    async with bearer(world, second) as other:
        error_of(await other.get("/api/rooms"), 401, "session_expired")
    error_of(await login(world, "bob"), 403, "account_inactive")
    with pytest.raises(Exception) as closed:
        await ws.recv(timeout=5)
    assert getattr(closed.value, "rcvd", None) is not None
    assert closed.value.rcvd.code == WS_CLOSE_REVOKED  # type: ignore[attr-defined]

    listed = (await admin.get("/api/admin/users")).json()["users"]
    assert "bob" not in {u["login_id"] for u in listed}
    everyone = (await admin.get("/api/admin/users", params={"include_inactive": True})).json()
    assert "bob" in {u["login_id"] for u in everyone["users"]}

    assert (await admin.post(f"/api/admin/users/{bob.id}/reactivate")).json()["is_active"]
    assert (await login(world, "bob")).status_code == 200
    # the old sessions stay ended
    error_of(await bob.api.get("/api/auth/me"), 401, "session_expired")


async def test_lockout_after_repeated_failures_tells_the_unlock_time(world: World) -> None:
    person = await world.add_person("dan", "田辺 ダン", sign_in=False)
    services = world.server.services
    assert services is not None
    async with services.unit() as uow:
        org = await uow.session.get(Organisation, world.org_id)
        assert org is not None
        threshold, minutes = org.lockout_threshold, org.lockout_minutes
    for _ in range(threshold - 1):
        error_of(await login(world, person.login_id, "wrong-password"), 401, "invalid_credentials")
    before = utcnow()
    locked = error_of(await login(world, person.login_id, "wrong-password"), 423, "account_locked")
    until = datetime.fromisoformat(locked["details"]["locked_until"])
    assert before + timedelta(minutes=minutes - 1) < until <= utcnow() + timedelta(minutes=minutes)
    assert until.isoformat() in locked["message_en"]
    assert (
        "ロック" in locked["message"]
        and f"{until.astimezone(JST):%H:%M}(日本時間)" in locked["message"]
    )
    # even the right password is refused until then
    error_of(await login(world, person.login_id), 423, "account_locked")

    async with services.unit() as uow:
        await uow.session.execute(
            update(User)
            .where(User.id == person.id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert (await login(world, person.login_id)).status_code == 200
    # a successful sign-in resets the count: one more failure does not lock again
    error_of(await login(world, person.login_id, "wrong-password"), 401, "invalid_credentials")
    assert (await login(world, person.login_id)).status_code == 200


async def test_lockout_counts_concurrent_failures(world: World) -> None:
    person = await world.add_person("eve", "江藤 イブ", sign_in=False)
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        org = await uow.session.get(Organisation, world.org_id)
        assert org is not None
        threshold = org.lockout_threshold
    async with httpx.AsyncClient(base_url=world.server.url, timeout=30) as client:
        tries = await asyncio.gather(
            *[
                client.post(
                    "/api/auth/login", json={"login_id": person.login_id, "password": f"guess-{i}"}
                )
                for i in range(threshold)  # all at once
            ]
        )
    assert {r.status_code for r in tries} <= {401, 423}
    assert any(r.status_code == 423 for r in tries)
    error_of(await login(world, person.login_id), 423, "account_locked")


async def test_login_id_is_case_insensitive(world: World) -> None:
    assert (await login(world, "ALICE")).status_code == 200
    error_of(await login(world, "ALICE", "wrong-password"), 401, "invalid_credentials")
    error_of(await login(world, "nobody"), 401, "invalid_credentials")


async def test_sign_out_and_sign_out_everywhere(world: World) -> None:
    carol = world["carol"]
    tokens = [(await login(world, "carol")).json()["token"] for _ in range(2)]
    async with bearer(world, tokens[0]) as one, bearer(world, tokens[1]) as two:
        r = await one.post("/api/auth/logout")
        assert r.status_code == 200
        error_of(await one.get("/api/auth/me"), 401, "session_expired")
        assert (await two.get("/api/auth/me")).status_code == 200
        assert (await carol.api.get("/api/auth/me")).status_code == 200

        r = await two.post("/api/auth/logout-all")
        assert r.status_code == 200 and r.json()["sessions_ended"] == 2
        error_of(await two.get("/api/auth/me"), 401, "session_expired")
        error_of(await carol.api.get("/api/rooms"), 401, "session_expired")
    # others are untouched; an unknown token is simply not signed in
    assert (await world["alice"].api.get("/api/auth/me")).status_code == 200
    async with bearer(world, "not-a-token") as stranger:
        error_of(await stranger.get("/api/auth/me"), 401, "not_authenticated")
    async with httpx.AsyncClient(base_url=world.server.url) as anonymous:
        error_of(await anonymous.get("/api/rooms"), 401, "not_authenticated")


async def test_expired_session_is_refused(world: World) -> None:
    alice = world["alice"]
    services = world.server.services
    assert services is not None
    async with services.unit() as uow:
        await uow.session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == hash_token(alice.token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error_of(await alice.api.get("/api/auth/me"), 401, "session_expired")


async def test_cookie_session_flags_and_csrf(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as browser:
        r = await browser.post("/api/auth/login", json={"login_id": "alice", "password": PASSWORD})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
        session_cookie = cookies["kakehashi_session_internet"]
        assert "httponly" in session_cookie and "samesite=strict" in session_cookie
        assert "secure" not in session_cookie.replace("samesite", "")  # plain http here
        assert "httponly" not in cookies["kakehashi_csrf_internet"]  # the page's script reads it
        csrf = r.json()["csrf_token"]
        assert browser.cookies["kakehashi_csrf_internet"] == csrf

        # a safe method needs no CSRF token
        assert (await browser.get("/api/rooms")).status_code == 200
        body = {"name": "CSRF確認", "member_ids": [world["bob"].id]}
        error_of(await browser.post("/api/rooms", json=body), 403, "csrf_failed")
        error_of(
            await browser.post("/api/rooms", json=body, headers={"X-CSRF-Token": "0" * 64}),
            403,
            "csrf_failed",
        )
        assert (await browser.get("/api/rooms")).json()["rooms"] == []  # nothing was created
        ok = await browser.post("/api/rooms", json=body, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text

        # sign-out by cookie is CSRF-protected too, and clears the cookies
        error_of(await browser.post("/api/auth/logout"), 403, "csrf_failed")
        out = await browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200
        assert "kakehashi_session_internet" not in browser.cookies
    # a bearer client is not a browser: no CSRF token needed
    r = await world["bob"].api.post("/api/rooms", json={"name": "bearer", "member_ids": []})
    assert r.status_code == 201


async def test_admin_cli_creates_departments_and_users_and_deactivates(world: World) -> None:
    settings = world.server.settings
    bu = await world["admin"].api.post("/api/admin/departments", json={"name": "市民部"})
    bu_id = bu.json()["id"]
    ka = await kakehashi(
        settings, "admin", "create-department", "市民課", "--parent-id", str(bu_id), "--code", "21"
    )
    assert ka.code == 0, ka.err
    ka_id = int(ka.out.split()[2])
    made = await kakehashi(
        settings,
        "admin",
        "create-user",
        "suzuki",
        "--name",
        "鈴木 一郎",
        "--kana",
        "すずき いちろう",
        "--department-id",
        str(ka_id),
        "--password",
        "Suzuki-pass-2026",
    )
    assert made.code == 0, made.err
    await world.give_licenses("suzuki")
    r = await login(world, "suzuki", "Suzuki-pass-2026")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["department_id"] == ka_id
    assert r.json()["user"]["display_name"] == "鈴木 一郎"
    depts = (await world["admin"].api.get("/api/admin/departments")).json()["departments"]
    assert {"id": ka_id, "name": "市民課", "parent_id": bu_id, "code": "21"} in depts

    # the CLI hashes at the production profile (RFC 9106 low-memory argon2id)
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        stored = await uow.session.scalar(
            select(User.password_hash).where(User.login_id == "suzuki")
        )
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")

    # deactivation from the CLI ends the REST session at once
    token = r.json()["token"]
    gone = await kakehashi(settings, "admin", "deactivate", "suzuki")
    assert gone.code == 0, gone.err
    async with bearer(world, token) as suzuki:
        error_of(await suzuki.get("/api/auth/me"), 401, "session_expired")
