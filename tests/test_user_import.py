"""CSV bulk import of users: what Excel writes, all or nothing, every bad row reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from chat.models import Department, User
from tests.clirun import kakehashi
from tests.harness import World

HEADER_JA = "ログインID,氏名,フリガナ,所属,役職,メールアドレス,権限,パスワード"


async def make_departments(world: World) -> dict[str, int]:
    """総務部 → 情報管理課 → 庶務係, 市民部 → 市民課 → 庶務係 (the 係 name is ambiguous)."""
    admin = world["admin"].api
    ids: dict[str, int] = {}

    async def dept(path: str, parent: str | None, code: str | None = None) -> None:
        body: dict[str, Any] = {"name": path.rsplit("/", 1)[-1], "code": code}
        if parent:
            body["parent_id"] = ids[parent]
        r = await admin.post("/api/admin/departments", json=body)
        assert r.status_code == 201, r.text
        ids[path] = r.json()["id"]

    await dept("総務部", None)
    await dept("総務部/情報管理課", "総務部", "1020")
    await dept("総務部/情報管理課/庶務係", "総務部/情報管理課")
    await dept("市民部", None)
    await dept("市民部/市民課", "市民部")
    await dept("市民部/市民課/庶務係", "市民部/市民課")
    return ids


async def post_csv(world: World, data: bytes) -> httpx.Response:
    return await world["admin"].api.post(
        "/api/admin/users/import", content=data, headers={"Content-Type": "text/csv"}
    )


async def user_count(world: World) -> int:
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        return int(await uow.session.scalar(select(func.count(User.id))) or 0)


async def users_by_login(world: World) -> dict[str, User]:
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        return {u.login_id: u for u in (await uow.session.execute(select(User))).scalars()}


def csv_errors(response: httpx.Response) -> list[tuple[int, str]]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "csv_invalid", error
    assert "1件も登録していません" in error["message"] and "nothing" in error["message_en"]
    return [(e["line"], e["column"]) for e in error["details"]["errors"]]


ROWS_JA = [
    HEADER_JA,
    "yamada.t,山田 太郎,ヤマダ タロウ,総務部/情報管理課,課長,yamada@example.lg.jp,所属長,"
    "Yamada-pass-2026",
    "kobayashi,小林 さくら,コバヤシ サクラ,1020,主事,,一般,",
    "watanabe,渡邉 髙志,ワタナベ タカシ,市民部/市民課/庶務係,,,member,",
]


async def test_import_utf8_bom_and_shift_jis_with_japanese_names(world: World) -> None:
    ids = await make_departments(world)
    text = "\r\n".join(ROWS_JA) + "\r\n"
    # UTF-8 with BOM (Excel's "CSV UTF-8")
    r = await post_csv(world, b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert r.status_code == 201, r.text
    created = {c["login_id"]: c for c in r.json()["created"]}
    assert set(created) == {"yamada.t", "kobayashi", "watanabe"}
    assert created["yamada.t"]["initial_password"] is None  # it was given in the file
    generated = created["kobayashi"]["initial_password"]
    assert generated and created["watanabe"]["initial_password"]
    users = await users_by_login(world)
    yamada = users["yamada.t"]
    assert yamada.display_name == "山田 太郎" and yamada.kana == "ヤマダ タロウ"
    assert yamada.department_id == ids["総務部/情報管理課"] and yamada.role == "supervisor"
    assert yamada.title == "課長" and yamada.email == "yamada@example.lg.jp"
    assert users["kobayashi"].department_id == ids["総務部/情報管理課"]  # by code
    assert users["watanabe"].department_id == ids["市民部/市民課/庶務係"]  # by full path
    assert users["watanabe"].display_name == "渡邉 髙志"
    await world.give_licenses("kobayashi")
    async with httpx.AsyncClient(base_url=world.server.url) as client:
        ok = await client.post(
            "/api/auth/login", json={"login_id": "kobayashi", "password": generated}
        )
        assert ok.status_code == 200, ok.text

    # Shift_JIS (CP932, what Excel writes by default): 髙 and ㈱ exist only in CP932
    sjis = "\r\n".join(
        [
            "login_id,display_name,kana,department,role",
            "takahashi,髙橋 ㈱次郎,たかはし じろう,情報管理課,member",
            "ito,伊藤 美咲,いとう みさき,,admin",
        ]
    ).encode("cp932")
    r = await post_csv(world, sjis)
    assert r.status_code == 201, r.text
    users = await users_by_login(world)
    assert users["takahashi"].display_name == "髙橋 ㈱次郎"
    assert users["takahashi"].kana == "たかはし じろう"
    assert users["takahashi"].department_id == ids["総務部/情報管理課"]  # by unique name
    assert users["ito"].role == "admin" and users["ito"].department_id is None

    # plain UTF-8 without BOM, LF line ends
    plain = "login_id,氏名\nnakamura,中村 玲奈\n".encode()
    r = await post_csv(world, plain)
    assert r.status_code == 201, r.text
    assert (await users_by_login(world))["nakamura"].display_name == "中村 玲奈"


async def test_a_bad_file_imports_nothing_and_reports_every_bad_row(world: World) -> None:
    await make_departments(world)
    before = await user_count(world)
    lines = [
        HEADER_JA,
        "good.one,良い 一,,総務部,,,,",  # 2: fine
        "bad id,悪い ID,,,,,,",  # 3: login_id
        "no.name,,,,,,,",  # 4: display_name
        "unknown.dept,所属 不明,,存在しない課,,,,",  # 5: department
        "Good.One,重複 さん,,,,,,",  # 6: duplicate of line 2 (case-insensitive)
        "alice,既存 アリス,,,,,,",  # 7: exists already
        "weak.pw,弱い パスワード,,,,,,abc",  # 8: password
        "bad.role,権限 違い,,,,,社長,",  # 9: role
        "bad.mail,メール 違い,,,,not-an-address,,",  # 10: email
        "ambiguous,曖昧 さん,,庶務係,,,,",  # 11: two departments are named 庶務係
        "",  # blank lines are skipped, and still counted
        'multi,"複数行",,,"主任',  # 13-14: a quoted cell over two lines, fine
        '(兼務)",,,',
        "too.many,セル 多すぎ,,,,,,,extra",  # 15: more cells than columns
        'bad.multi,"二行の,',  # 16-17: reported by its first line
        '氏名",,,,,社長,',
        "good.two,良い 二,,,,,,",  # 18: fine
    ]
    for encoding in ("utf-8-sig", "cp932"):
        r = await post_csv(world, ("\r\n".join(lines) + "\r\n").encode(encoding))
        errors = csv_errors(r)
        assert errors == [
            (3, "login_id"),
            (4, "display_name"),
            (5, "department"),
            (6, "login_id"),
            (7, "login_id"),
            (8, "password"),
            (9, "role"),
            (10, "email"),
            (11, "department"),
            (15, ""),
            (16, "role"),
        ], encoding
        rows = r.json()["error"]["details"]["errors"]
        assert all(e["code"] and e["message"] and e["message_en"] for e in rows)
        messages = {e["line"]: e["message_en"] for e in rows}
        assert "line 2" in messages[6] and "exists" in messages[7]
        assert "unknown" in messages[5] and "存在しない課" in messages[5]
        assert "several" in messages[11] and "庶務係" in messages[11]
        assert await user_count(world) == before


async def test_import_refuses_bad_files_whole(world: World) -> None:
    before = await user_count(world)
    missing = csv_errors(await post_csv(world, "氏名,所属\n佐々木,総務部\n".encode()))
    assert missing == [(1, "login_id")]
    for empty in (b"", b"login_id,display_name\r\n"):
        r = await post_csv(world, empty)
        assert r.status_code == 400 and r.json()["error"]["code"] == "csv_invalid"
    # neither UTF-8 nor Shift_JIS
    r = await post_csv(world, "login_id,display_name\nx,テスト\n".encode("utf-16"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "csv_invalid"
    # only administrators import
    r = await world["alice"].api.post(
        "/api/admin/users/import",
        content=b"login_id,display_name\nsneaky,Sneaky\n",
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert await user_count(world) == before


async def test_import_through_the_cli(world: World, tmp_path: Path) -> None:
    ids = await make_departments(world)
    settings = world.server.settings
    good = tmp_path / "職員一覧.csv"
    good.write_bytes(
        "\r\n".join(
            [
                "ログインID,氏名,ふりがな,部署",
                "kimura,木村 髙子,きむら たかこ,総務部/情報管理課/庶務係",
                "hayashi,林 翔,はやし しょう,",
            ]
        ).encode("cp932")
    )
    done = await kakehashi(settings, "admin", "import-users", str(good))
    assert done.code == 0, done.err
    assert "created kimura initial password: " in done.out and "created hayashi" in done.out
    users = await users_by_login(world)
    assert users["kimura"].display_name == "木村 髙子"
    assert users["kimura"].department_id == ids["総務部/情報管理課/庶務係"]

    before = await user_count(world)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        b"\xef\xbb\xbf"
        + "login_id,display_name,department\nok.row,良い,\nkimura,重複,\n"
        ",名無し,存在しない\n".encode()
    )
    done = await kakehashi(settings, "admin", "import-users", str(bad))
    assert done.code == 1
    assert "csv_invalid" in done.err and "1件も登録していません" in done.err
    assert "'line': 3, 'column': 'login_id'" in done.err
    assert "'line': 4, 'column': 'login_id'" in done.err
    assert "'line': 4, 'column': 'department'" in done.err
    assert await user_count(world) == before
    assert world.server.services is not None
    async with world.server.services.unit() as uow:
        assert await uow.session.scalar(select(func.count(Department.id))) == len(ids)
