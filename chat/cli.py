"""``kakehashi``: serve, migrate, administer; ``sanitize`` and ``worker`` are the sanitiser's."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from chat import accounts, audit, licenses
from chat.app import build_services, close_services, create_app
from chat.errors import ChatError, NotFound
from chat.http_protocol import StreamingHttpProtocol
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
        "http": StreamingHttpProtocol,
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
            if created is not None:
                await licenses.bootstrap(uow, created[0].org_id, created[0].id)
    finally:
        await close_services(services)
    if created is not None and not quiet:
        admin, password = created
        url = f"http://{settings.host}:{settings.port}/"
        lgwan = f"http://{settings.host}:{settings.lgwan_port}/" if settings.lgwan_port else "-"
        print(
            "\n  初回起動: 管理者を作成しました / first start: an administrator was created\n"
            f"    インターネット接続系 / internet side: {url}\n"
            f"    LGWAN接続系 / LGWAN side:            {lgwan}\n"
            f"    ログインID: {admin.login_id}\n"
            f"    パスワード: {password}\n"
            "  このパスワードは一度だけ表示されます。ログイン後に変更してください。\n"
            "  This password is shown once; change it after signing in.\n",
            flush=True,
        )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn's ``sockets=`` (port 0: a free one).

    Made with ``proto=IPPROTO_TCP``, not the 0 that ``socket.create_server`` leaves: asyncio
    turns Nagle's algorithm off (``TCP_NODELAY``) only on accepted sockets whose ``proto`` says
    TCP, and with it on, a response written in two parts (headers, then body) waits for the
    client's delayed ACK: some 40 ms added to every request, uploads included."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_listeners(settings: Settings) -> list[socket.socket]:
    """One listening socket per side's port (chat/sides.py decides the side by the port)."""
    sockets: list[socket.socket] = []
    try:
        for port, _side in settings.listener_sides():
            sockets.append(listen(settings.host, port))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    if args.lgwan_port is not None:
        settings.lgwan_port = args.lgwan_port
    try:
        settings.check()
    except ValueError as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return 2
    asyncio.run(prepare(settings))
    try:
        sockets = bind_listeners(settings)
    except OSError as exc:
        print(f"kakehashi: cannot listen on {settings.host}: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(uvicorn_config(settings, create_app(settings)))
    server.run(sockets=sockets)
    return 0


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    asyncio.run(prepare(settings, quiet=False))
    print("migrated")
    return 0


async def _collect_blobs(settings: Settings, args: argparse.Namespace) -> int:
    services = await build_services(settings)
    try:
        collected = await services.sanitizing.collect_blobs(
            min_age=timedelta(hours=args.min_age_hours), dry_run=args.dry_run
        )
    finally:
        await close_services(services)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(collected.blobs)} orphaned blobs ({collected.bytes_freed} bytes), "
        f"{collected.staging} staging leftovers"
    )
    return 0


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    if args.admin_cmd == "collect-blobs":
        return await _collect_blobs(settings, args)
    services = await build_services(settings)
    try:
        async with services.unit() as uow:
            org = await uow.session.scalar(select(Organisation).order_by(Organisation.id))
            if org is None:
                print("no organisation yet: run `kakehashi migrate` first", file=sys.stderr)
                return 1
            actor = audit.cli_actor(org.id)
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
                    actor=actor,
                )
                print(f"created user {user.id} {user.login_id}")
            elif args.admin_cmd == "create-department":
                dept = await accounts.create_department(
                    uow, org.id, args.name, parent_id=args.parent_id, code=args.code, actor=actor
                )
                print(f"created department {dept.id} {dept.name}")
            elif args.admin_cmd == "import-users":
                data = await asyncio.to_thread(Path(args.file).read_bytes)
                created = await import_users(uow, org.id, data, actor=actor)
                for row in created:
                    extra = (
                        f" initial password: {row['initial_password']}"
                        if row["initial_password"]
                        else ""
                    )
                    print(f"created {row['login_id']}{extra}")
            elif args.admin_cmd == "deactivate":
                user = await _by_login(uow, args.login_id)
                await accounts.deactivate_user(uow, org.id, user.id, actor=actor)
                print(f"deactivated {user.login_id}")
            elif args.admin_cmd == "set-password":
                user = await _by_login(uow, args.login_id)
                await accounts.set_password(
                    uow,
                    org.id,
                    user.id,
                    args.password or getpass.getpass("password: "),
                    actor=actor,
                )
                print(f"password set for {user.login_id}")
    except ChatError as exc:
        _print_error(exc)
        return 1
    finally:
        await close_services(services)
    return 0


def _print_error(exc: ChatError) -> None:
    print(f"error ({exc.code}): {exc.message} / {exc.message_en}", file=sys.stderr)
    for key, value in exc.details.items():
        print(f"  {key}: {value}", file=sys.stderr)


async def cmd_audit_verify(settings: Settings, _: argparse.Namespace) -> int:
    """Exit 0 when the chain and its head hold, 1 when not (each problem names its entry).
    Reads only: it may run against a replica or with a read-only database role."""

    def show(problem: audit.Problem) -> None:
        print(f"{problem.message_en} / {problem.message}", flush=True)

    services = await build_services(settings)
    try:
        result = await audit.verify(services.db, on_problem=show)
    finally:
        await close_services(services)
    head = f"head {result.head_seq} {result.head_hash}" if result.head_seq else "no head"
    if result.ok:
        print(f"監査ログは改ざんされていません / audit log intact: {result.count} entries, {head}")
        return 0
    print(
        f"監査ログに{result.problem_count}件の問題があります / audit log NOT intact: "
        f"{result.problem_count} problem(s) in {result.count} entries, {head}"
    )
    return 1


async def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    """The whole log (every organisation) of a period, oldest first, to ``--output`` (``-``:
    standard output); written to ``FILE.part`` and renamed when complete."""
    try:
        fmt = audit.check_format(args.format)
        lang = audit.check_lang(args.lang)
        since, until = audit.parse_range(args.since, args.until)
    except ChatError as exc:
        _print_error(exc)
        return 2
    services = await build_services(settings)
    try:
        async with services.unit() as uow:
            entry = await audit.record(
                uow.session,
                audit.cli_actor(None),
                "audit.export",
                target_type="audit_log",
                details={
                    "format": fmt,
                    "lang": lang,
                    "since": since.isoformat() if since else None,
                    "until": until.isoformat() if until else None,
                    "output": str(args.output)[:200],
                },
            )
        chunks = audit.export_chunks(
            services.db,
            fmt,
            org_id=None,
            since=since,
            until=until,
            lang=lang,
            up_to_seq=entry.seq,
        )
        if args.output == "-":
            async for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return 0
        target = Path(args.output)
        partial = target.with_name(target.name + ".part")
        out = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
        except BaseException:
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(partial.replace, target)
    except OSError as exc:
        print(f"kakehashi: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    finally:
        await close_services(services)
    print(f"exported to {args.output}", file=sys.stderr)
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
    serve.add_argument("--port", type=int, help="the internet side's port (default 8000)")
    serve.add_argument(
        "--lgwan-port", type=int, help="the LGWAN side's port (default 8001; 0: none)"
    )
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
    cb = asub.add_parser(
        "collect-blobs", help="delete attachment blobs nothing references (also runs hourly)"
    )
    cb.add_argument("--dry-run", action="store_true")
    cb.add_argument("--min-age-hours", type=float, default=6.0)
    sp = asub.add_parser("set-password")
    sp.add_argument("login_id")
    sp.add_argument("--password")
    aud = sub.add_parser("audit", help="verify or export the audit log")
    ausub = aud.add_subparsers(dest="audit_cmd", required=True)
    ausub.add_parser("verify", help="check the hash chain: exit 0 intact, 1 not")
    ex = ausub.add_parser("export", help="entries of a period as CSV (Excel) or JSON Lines")
    ex.add_argument("--format", choices=audit.EXPORT_FORMATS, default="csv")
    ex.add_argument("--since", help="from (inclusive): 2026-04-01 or ISO 8601; Japan time")
    ex.add_argument("--until", help="to: a date includes that whole day; ISO 8601 is exclusive")
    ex.add_argument("--lang", choices=["ja", "en"], default="ja", help="CSV headers")
    ex.add_argument("--output", "-o", default="-", help="a file, or - for standard output")
    sub.add_parser("sanitize", help="sanitise a file (see `kakehashi sanitize --help`)")
    sub.add_parser("worker", help="run sanitisation jobs")
    return parser


def configure_logging(settings: Settings) -> None:
    """The root logger at ``KAKEHASHI_LOG_LEVEL`` (uvicorn's loggers get it from its config):
    at ``warning``, the app's per-request and per-attachment lines are not written at all."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    level = 5 if settings.log_level == "trace" else getattr(logging, settings.log_level.upper())
    logging.getLogger().setLevel(level)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("sanitize", "worker"):
        from sanitizer.cli import main as sanitizer_main

        return sanitizer_main(argv)
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings)
    if args.cmd == "serve":
        return cmd_serve(settings, args)
    if args.cmd == "migrate":
        return cmd_migrate(settings, args)
    if args.cmd == "audit":
        command = cmd_audit_verify if args.audit_cmd == "verify" else cmd_audit_export
        return asyncio.run(command(settings, args))
    return asyncio.run(_admin(settings, args))


if __name__ == "__main__":
    sys.exit(main())
