"""``kakehashi``: serve, migrate, administer; ``sanitize`` and ``worker`` are the sanitiser's."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from chat import accounts
from chat.app import build_services, close_services, create_app
from chat.errors import ChatError, NotFound
from chat.migrate import upgrade
from chat.models import Organisation, User
from chat.settings import Settings
from chat.transport import DirectSendProtocol
from chat.user_import import import_users

WS_MAX_BYTES = 1024 * 1024  # protocol limit; frames above MAX_FRAME_BYTES get an error event
DEFAULT_ORG_NAME = "架け橋市"


def uvicorn_config(settings: Settings, app: Any, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws_max_size": WS_MAX_BYTES,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        # Frames are encoded once per event and shared by every recipient; compressing per
        # connection would redo that work per recipient and cost a zlib context each.
        "ws_per_message_deflate": False,
        "ws": DirectSendProtocol,
        "proxy_headers": False,
        "server_header": False,
        "log_level": settings.log_level,
        "lifespan": "on",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


async def prepare(settings: Settings, *, quiet: bool = False) -> None:
    """Create the data folder, migrate, and create a first administrator if there is none."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = await build_services(settings)
    try:
        await upgrade(services.db)
        async with services.unit() as uow:
            created = await accounts.bootstrap(uow, DEFAULT_ORG_NAME, "admin")
    finally:
        await close_services(services)
    if created is not None and not quiet:
        admin, password = created
        url = f"http://{settings.host}:{settings.port}/"
        print(
            "\n  初回起動: 管理者を作成しました / first start: an administrator was created\n"
            f"    URL:        {url}\n"
            f"    ログインID: {admin.login_id}\n"
            f"    パスワード: {password}\n"
            "  このパスワードは一度だけ表示されます。ログイン後に変更してください。\n"
            "  This password is shown once; change it after signing in.\n",
            flush=True,
        )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    settings.check()
    asyncio.run(prepare(settings))
    server = uvicorn.Server(uvicorn_config(settings, create_app(settings)))
    server.run()
    return 0


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    asyncio.run(prepare(settings, quiet=False))
    print("migrated")
    return 0


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    services = await build_services(settings)
    try:
        async with services.unit() as uow:
            org = await uow.session.scalar(select(Organisation).order_by(Organisation.id))
            if org is None:
                print("no organisation yet: run `kakehashi migrate` first", file=sys.stderr)
                return 1
            if args.admin_cmd == "create-user":
                password = args.password or getpass.getpass("password: ")
                user = await accounts.create_user(
                    uow,
                    org.id,
                    accounts.UserInput(
                        login_id=args.login_id,
                        display_name=args.name,
                        kana=args.kana,
                        role=args.role,
                        department_id=args.department_id,
                        password=password,
                    ),
                )
                print(f"created user {user.id} {user.login_id}")
            elif args.admin_cmd == "create-department":
                dept = await accounts.create_department(
                    uow, org.id, args.name, parent_id=args.parent_id, code=args.code
                )
                print(f"created department {dept.id} {dept.name}")
            elif args.admin_cmd == "import-users":
                data = await asyncio.to_thread(Path(args.file).read_bytes)
                created = await import_users(uow, org.id, data)
                for row in created:
                    extra = (
                        f" initial password: {row['initial_password']}"
                        if row["initial_password"]
                        else ""
                    )
                    print(f"created {row['login_id']}{extra}")
            elif args.admin_cmd == "deactivate":
                user = await _by_login(uow, args.login_id)
                await accounts.deactivate_user(uow, org.id, user.id)
                print(f"deactivated {user.login_id}")
            elif args.admin_cmd == "set-password":
                user = await _by_login(uow, args.login_id)
                await accounts.set_password(
                    uow, org.id, user.id, args.password or getpass.getpass("password: ")
                )
                print(f"password set for {user.login_id}")
    except ChatError as exc:
        print(f"error ({exc.code}): {exc.message} / {exc.message_en}", file=sys.stderr)
        for key, value in exc.details.items():
            print(f"  {key}: {value}", file=sys.stderr)
        return 1
    finally:
        await close_services(services)
    return 0


async def _by_login(uow: Any, login_id: str) -> Any:
    user = await uow.session.scalar(select(User).where(User.login_id == login_id))
    if user is None:
        raise NotFound("ユーザーが見つかりません。", f"No user {login_id!r}.")
    return user


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kakehashi", description="Kakehashi business chat")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="migrate, then run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    sub.add_parser("migrate", help="create or upgrade the database schema")
    admin = sub.add_parser("admin", help="administer the organisation")
    asub = admin.add_subparsers(dest="admin_cmd", required=True)
    cu = asub.add_parser("create-user")
    cu.add_argument("login_id")
    cu.add_argument("--name", required=True)
    cu.add_argument("--kana", default="")
    cu.add_argument("--role", default="member", choices=["admin", "supervisor", "member"])
    cu.add_argument("--department-id", type=int)
    cu.add_argument("--password", help="omit to be asked")
    cd = asub.add_parser("create-department")
    cd.add_argument("name")
    cd.add_argument("--parent-id", type=int)
    cd.add_argument("--code")
    iu = asub.add_parser("import-users", help="CSV: UTF-8, UTF-8 with BOM or Shift_JIS")
    iu.add_argument("file")
    de = asub.add_parser("deactivate")
    de.add_argument("login_id")
    sp = asub.add_parser("set-password")
    sp.add_argument("login_id")
    sp.add_argument("--password")
    sub.add_parser("sanitize", help="sanitise a file (see `kakehashi sanitize --help`)")
    sub.add_parser("worker", help="run sanitisation jobs")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("sanitize", "worker"):
        from sanitizer.cli import main as sanitizer_main

        return sanitizer_main(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    if args.cmd == "serve":
        return cmd_serve(settings, args)
    if args.cmd == "migrate":
        return cmd_migrate(settings, args)
    return asyncio.run(_admin(settings, args))


if __name__ == "__main__":
    sys.exit(main())
