"""Browser client bench (issue 6): first paint, room switch, a 10,000-message room scrolled to
its first message, and the size of the JavaScript and CSS the app page loads.

    .venv/bin/python bench/web.py --quick     # about 2 minutes: 2,000-message room, few repeats
    .venv/bin/python bench/web.py             # the full run: 10,000-message room
    .venv/bin/python bench/web.py --help      # --big, --repeats, --switches, --scrolls, ...

What it does, in one invocation:

1. seeds a fresh embedded-default data folder (SQLite + in-process broker) in a temporary
   directory, in a child process: ``chat.cli.prepare`` (migrations, first administrator), one
   bench user and eight colleagues holding both sides' licenses, 30 group rooms made with
   ``chat.rooms.create_group`` with 8–40 messages each sent through
   ``chat.messages.send_message``, and one room whose N messages (10,000 in the full run) are
   inserted in bulk: a ``messages`` row and a ``message`` event (payload from
   ``chat.messages.message_dict``) per sequence number, the room's ``last_seq`` moved past
   them, spread over 90 days of office hours, Japanese text of mixed length (short replies,
   sentences, multi-line reports, a few long notices with a URL), 5 % of them replies.  The
   bench user has read everything, so every room opens at its newest message;
2. starts ``python -m chat serve`` (unchanged, internet side only) on a free loopback port;
3. drives Debian's headless Chromium (``/usr/bin/chromium``, never a downloaded browser) with
   Playwright.  Every figure is measured inside the page with ``performance.now()``: a
   ``MutationObserver`` notes when the expected element appears, then "painted" is the next
   frame (``requestAnimationFrame`` followed by a message-channel task, i.e. after the frame
   that shows it).  Playwright's own waits only bound the runs, they are never the measure.

   - **sign-in page** (new context each repeat, empty cache; then a reload, warm cache): first
     paint, first contentful paint, largest contentful paint, the sign-in form painted — all
     from the navigation's start;
   - **app page** with the session cookie already set: first contentful paint and the room
     list painted with every room in it (cold, then warm);
   - **room switch**: from ``click()`` on a room in the list until that room's newest message
     is in the DOM and painted (the client fetches the room and its last page each time);
   - **the big room**: opened the same way, then scrolled up by a ``requestAnimationFrame``
     loop (``scrollTop`` lowered at a fixed speed in px/s, like a person holding the wheel)
     until its first message is on screen; the client loads its pages itself from its scroll
     handler.  Recorded: every frame interval (median, p95, max, share over 50 ms), long
     tasks, the time to reach the first message, pages loaded, and at the end the DOM size and
     the JS heap after a garbage collection (CDP ``Performance.getMetrics``);
   - **assets**: every script and stylesheet the app page loaded, fetched again from the server
     as served, raw and compressed (gzip level 6; brotli quality 11 when the ``brotli`` module
     is installed).

Targets (printed PASS/FAIL on medians, never asserted): first paint < 1 s on loopback, room
switch < 100 ms, JavaScript + CSS < 300 KB (300,000 bytes) compressed, and for "smooth": frame
p95 ≤ 50 ms with at most 5 % of frames over 50 ms, and a DOM that does not grow with the
history scrolled through.  The machine's load average is printed: the browser, the server and
whatever else runs share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve()
CHROMIUM = os.environ.get("KAKEHASHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-precise-memory-info",
]
VIEWPORT = {"width": 1280, "height": 800}
LOGIN = "bench"
SMALL_ROOMS = 30
BUDGET_BYTES = 300_000
PAINT_TARGET_MS = 1000.0
SWITCH_TARGET_MS = 100.0
LONG_FRAME_MS = 50.0
LONG_FRAME_SHARE = 0.05
SERVER_START_TIMEOUT_S = 60.0

ROOM_NAMES = [
    "総務課 連絡",
    "防災訓練 準備",
    "市民課 窓口",
    "税務課 確定申告",
    "福祉課 相談",
    "子育て支援",
    "広報誌 編集",
    "議会対応",
    "情報政策",
    "道路維持 現場",
    "上下水道",
    "観光振興",
    "契約・入札",
    "選挙管理",
    "教育委員会 連絡",
    "保健センター",
    "介護保険",
    "農政 現地確認",
    "環境衛生",
    "消防 連携",
    "企画 予算",
    "人事 研修",
    "庁舎管理",
    "公民館 行事",
    "図書館",
    "建築確認",
    "都市計画",
    "生活保護",
    "会計課",
    "秘書広報",
]
COLLEAGUES = [
    ("tanaka", "田中 一郎"),
    ("suzuki", "鈴木 花子"),
    ("takahashi", "高橋 健"),
    ("watanabe", "渡辺 美咲"),
    ("ito", "伊藤 誠"),
    ("yamamoto", "山本 由美"),
    ("nakamura", "中村 翔"),
    ("kobayashi", "小林 さくら"),
]
SHORT = [
    "了解です。",
    "ありがとうございます。",
    "確認します。",
    "お疲れ様です。",
    "承知しました。",
    "対応済みです。",
    "少々お待ちください。",
    "助かります！",
    "はい、大丈夫です。",
    "後ほど折り返します。",
]
SENTENCES = [
    "本日の窓口は午後から混雑が予想されますので、応援をお願いできますでしょうか。",
    "来週の防災訓練の資料を共有フォルダに置きました。ご確認ください。",
    "先ほどの件、課長に確認したところ今週中に回答するとのことです。",
    "市民の方から道路の陥没について通報がありました。現地確認に向かいます。",
    "会議室の予約を10時から12時に変更しました。",
    "申請書の様式が新しくなっていますので、旧様式は使わないようにしてください。",
    "明日は在宅勤務のため、急ぎの連絡はこちらのチャットにお願いします。",
    "議事録の案を作成しました。修正点があればコメントをお願いします。",
    "予算要求の締め切りは今月末です。各係で取りまとめをお願いします。",
    "システムのメンテナンスのため、18時以降は一部の業務端末が使えません。",
    "住民説明会の参加者は現在42名です。資料は50部用意します。",
    "庁内LANの切り替え作業は土曜日の午前中に行います。",
    "例の問い合わせ、過去の対応記録を探してみます。",
    "公用車の鍵は総務課のキーボックスに戻しておきました。",
    "午後の打ち合わせはオンラインに切り替えます。",
    "現場の写真を後で送ります。雨が強いので少し遅れます。",
]


def _body(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(SHORT)
    if roll < 0.80:
        return "".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 2)))
    if roll < 0.97:
        lines = [rng.choice(SENTENCES) for _ in range(rng.randint(3, 6))]
        return "\n".join(lines)
    paragraphs = ["【お知らせ】" + rng.choice(SENTENCES)]
    paragraphs += ["".join(rng.choice(SENTENCES) for _ in range(3)) for _ in range(4)]
    paragraphs.append("詳細: https://intra.example.lg.jp/notice/" + str(rng.randint(1000, 9999)))
    return "\n\n".join(paragraphs)


# -- seeding (runs in its own process: it imports the server's code) ---------------------------


async def _seed(big: int, out: Path) -> None:
    import uuid

    from sqlalchemy import func, insert, select, update

    from chat import accounts, audit, licenses, messages, rooms
    from chat.app import build_services, close_services
    from chat.auth import Principal
    from chat.cli import prepare
    from chat.models import Event, Message, Organisation, Room, RoomMember, User
    from chat.settings import Settings

    rng = random.Random(6)
    password = "Bench-" + uuid.uuid4().hex[:12]
    settings = Settings()
    await prepare(settings, quiet=True)
    services = await build_services(settings)
    try:
        users: dict[str, User] = {}
        async with services.unit() as uow:
            org_id = await uow.session.scalar(select(Organisation.id).order_by(Organisation.id))
            assert org_id is not None
            for side in ("lgwan", "internet"):
                await licenses.set_pool(uow, audit.SYSTEM, org_id, side, 100)
            people = [(LOGIN, "庁内 太郎"), *COLLEAGUES]
            for login, name in people:
                users[login] = await accounts.create_user(
                    uow,
                    org_id,
                    accounts.UserInput(
                        login_id=login,
                        display_name=name,
                        password=password if login == LOGIN else None,
                    ),
                )
            change = licenses.Change()
            for user in users.values():
                for side in ("lgwan", "internet"):
                    change.set(user.id, side, True)
            await licenses.apply(uow, audit.SYSTEM, org_id, change)
        principals = {
            login: Principal(user=user, session_id=0, side="internet")
            for login, user in users.items()
        }
        colleagues = [login for login, _ in COLLEAGUES]
        small: list[int] = []
        for name in ROOM_NAMES[:SMALL_ROOMS]:
            members = rng.sample(colleagues, rng.randint(2, len(colleagues)))
            async with services.unit() as uow:
                room = await rooms.create_group(
                    uow, principals[members[0]], name, [users[m].id for m in [LOGIN, *members]]
                )
            async with services.unit() as uow:
                for _ in range(rng.randint(8, 40)):
                    sender = rng.choice([*members, LOGIN] if rng.random() < 0.2 else members)
                    await messages.send_message(
                        uow,
                        principals[sender],
                        room.id,
                        client_id=uuid.uuid4().hex,
                        body=_body(rng),
                    )
            small.append(room.id)

        # The big room: N messages inserted in bulk, each with its `message` event, exactly
        # as send_message would have written them, but spread over 90 days.
        async with services.unit() as uow:
            room = await rooms.create_group(
                uow,
                principals[colleagues[0]],
                "全庁連絡 (1万件)",
                [users[m].id for m in [LOGIN, *colleagues]],
            )
            big_id = room.id
        async with services.unit() as uow:
            seq = (await uow.session.get(Room, big_id)).last_seq  # type: ignore[union-attr]
            start = datetime.now(UTC) - timedelta(days=90)
            step = timedelta(days=90) / max(1, big)
            ids: list[int] = []
            chunk: list[dict[str, Any]] = []

            async def flush() -> None:
                if not chunk:
                    return
                rows = await uow.session.execute(
                    insert(Message).returning(Message.id, Message.seq), chunk
                )
                by_seq = {s: i for i, s in rows.all()}
                events = []
                for values in chunk:
                    message = Message(id=by_seq[values["seq"]], edited_at=None, **values)
                    ids.append(message.id)
                    sender = users_by_id[values["sender_id"]]
                    events.append(
                        {
                            "room_id": big_id,
                            "seq": values["seq"],
                            "type": "message",
                            "payload": {"message": messages.message_dict(message, sender)},
                            "created_at": values["created_at"],
                            "side": "internet",
                        }
                    )
                await uow.session.execute(insert(Event), events)
                chunk.clear()

            users_by_id = {u.id: u for u in users.values()}
            when = start
            for n in range(big):
                seq += 1
                when = start + step * n
                when = when.replace(hour=8 + (when.hour % 10))  # office hours, JST-ish
                reply = rng.choice(ids[-30:]) if ids and rng.random() < 0.05 else None
                sender = rng.choice(colleagues) if rng.random() < 0.9 else LOGIN
                chunk.append(
                    {
                        "room_id": big_id,
                        "seq": seq,
                        "sender_id": users[sender].id,
                        "client_id": uuid.uuid4().hex,
                        "body": _body(rng),
                        "reply_to_id": reply,
                        "mention_all": False,
                        "mentions": {"user_ids": []},
                        "location": None,
                        "created_at": when,
                    }
                )
                if len(chunk) >= 500:
                    await flush()
            await flush()
            await uow.session.execute(
                update(Room).where(Room.id == big_id).values(last_seq=seq, last_activity_at=when)
            )
        # The bench user has read everything: every room opens at its newest message.
        async with services.unit() as uow:
            await uow.session.execute(
                update(RoomMember)
                .where(RoomMember.user_id == users[LOGIN].id)
                .values(
                    read_seq=select(Room.last_seq)
                    .where(Room.id == RoomMember.room_id)
                    .scalar_subquery()
                )
            )
            last = dict(
                (
                    await uow.session.execute(
                        select(Message.room_id, func.max(Message.seq)).group_by(Message.room_id)
                    )
                ).all()
            )
            first_big = await uow.session.scalar(
                select(func.min(Message.seq)).where(Message.room_id == big_id)
            )
            count = await uow.session.scalar(
                select(func.count()).select_from(Message).where(Message.room_id == big_id)
            )
    finally:
        await close_services(services)
    out.write_text(
        json.dumps(
            {
                "login": LOGIN,
                "password": password,
                "small": [{"id": r, "last_seq": last[r]} for r in small],
                "big": {"id": big_id, "first_seq": first_big, "last_seq": last[big_id]},
                "big_count": count,
                "rooms": len(small) + 1,
            }
        )
    )


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SNAPSHOT = ("chat", "web", "migrations", "sanitizer", "storage")


def snapshot(into: Path) -> str:
    """Copy the server and the client as they are now: the bench measures one version even
    when the work tree changes while it runs.  Returns a digest of the copied web/."""
    import hashlib

    for name in SNAPSHOT:
        shutil.copytree(REPO / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted((into / "web").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(into)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def child_env(data_dir: Path, src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAKEHASHI_DATA_DIR": str(data_dir),
            "KAKEHASHI_LOG_LEVEL": "warning",
            "KAKEHASHI_ENV": "development",
            "PYTHONPATH": os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
    )
    return env


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- in the page -----------------------------------------------------------------------------

# Installed before any of the page's scripts: notes when the sign-in form and the full room list
# first appear, and the frame after (painted).
INIT_SCRIPT = """
(() => {
  const marks = {};
  const want = %d;
  window.__kkMarks = marks;
  window.__kkAfterPaint = (cb) => requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => cb(performance.now());
    ch.port2.postMessage(0);
  });
  window.__kkLcp = 0;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__kkLcp = e.renderTime || e.startTime;
    }).observe({ type: 'largest-contentful-paint', buffered: true });
  } catch (e) { /* not supported */ }
  const check = () => {
    if (!marks.form && document.querySelector('#login-id')) {
      marks.form = performance.now();
      window.__kkAfterPaint((t) => { marks.formPainted = t; });
    }
    if (!marks.rooms && document.querySelectorAll('.room-list a.room-item').length >= want) {
      marks.rooms = performance.now();
      window.__kkAfterPaint((t) => { marks.roomsPainted = t; });
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
})();
"""

PAINTS_JS = """
() => {
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map((e) => [e.name, e.startTime]));
  const nav = performance.getEntriesByType('navigation')[0] || {};
  return { fp: paint['first-paint'] ?? null, fcp: paint['first-contentful-paint'] ?? null,
           lcp: window.__kkLcp || null, dcl: nav.domContentLoadedEventEnd ?? null,
           load: nav.loadEventEnd ?? null, marks: { ...window.__kkMarks } };
}
"""

SWITCH_JS = """
({ roomId, seq, timeoutMs }) => new Promise((resolve, reject) => {
  const sel = `section.room[aria-labelledby="room-title-${roomId}"] article.msg[data-seq="${seq}"]`;
  const link = document.querySelector(`a.room-item[data-room-id="${roomId}"]`);
  if (!link) { reject(new Error(`room ${roomId} not in the list`)); return; }
  let t0 = 0;
  let shown = 0;
  const timer = setTimeout(() => {
    obs.disconnect();
    reject(new Error('switch timed out'));
  }, timeoutMs);
  const obs = new MutationObserver(() => {
    if (shown || !document.querySelector(sel)) return;
    shown = performance.now();
    obs.disconnect();
    window.__kkAfterPaint((t) => {
      clearTimeout(timer);
      resolve({ shown: shown - t0, painted: t - t0 });
    });
  });
  obs.observe(document.body, { childList: true, subtree: true });
  t0 = performance.now();
  link.click();
})
"""

IDLE_FRAMES_JS = """
(ms) => new Promise((resolve) => {
  const deltas = [];
  let last = 0;
  const t0 = performance.now();
  const step = (now) => {
    if (last) deltas.push(now - last);
    last = now;
    if (now - t0 < ms) requestAnimationFrame(step); else resolve(deltas);
  };
  requestAnimationFrame(step);
})
"""

SCROLL_JS = """
({ firstSeq, speed, timeoutMs }) => new Promise((resolve) => {
  const history = document.querySelector('section.room .history');
  const list = history.querySelector('.messages');
  const deltas = [];
  const pages = [];  // [ms since start, index in deltas of the frame that saw the new page]
  const longTasks = [];
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) longTasks.push(e.duration);
  });
  try { obs.observe({ type: 'longtask' }); } catch (e) { /* not supported */ }
  let count = list.childElementCount;
  let last = 0;
  let t0 = 0;
  const done = (reached) => {
    obs.disconnect();
    resolve({ reached, elapsed: performance.now() - t0, deltas, pages, longTasks,
              messages: list.querySelectorAll('article.msg').length });
  };
  const step = (now) => {
    if (!t0) t0 = now;
    if (last) deltas.push(now - last);
    const d = last ? now - last : 16.7;
    last = now;
    const c = list.childElementCount;
    if (c !== count) { pages.push([now - t0, deltas.length - 1]); count = c; }
    const first = list.querySelector('article.msg');
    if (first && first.dataset.seq === String(firstSeq) && history.scrollTop <= 0) {
      done(true);
      return;
    }
    if (now - t0 > timeoutMs) { done(false); return; }
    history.scrollTop = Math.max(0, history.scrollTop - speed * Math.min(d, 100) / 1000);
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
})
"""

DOM_JS = """
() => ({ nodes: document.getElementsByTagName('*').length,
         messages: document.querySelectorAll('section.room article.msg').length,
         heap: performance.memory ? performance.memory.usedJSHeapSize : null })
"""


# -- figures ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Results:
    signin_cold: list[dict[str, Any]] = field(default_factory=list)
    signin_warm: list[dict[str, Any]] = field(default_factory=list)
    app_cold: list[dict[str, Any]] = field(default_factory=list)
    app_warm: list[dict[str, Any]] = field(default_factory=list)
    switches: list[dict[str, float]] = field(default_factory=list)
    big_open: list[dict[str, float]] = field(default_factory=list)
    scrolls: list[dict[str, Any]] = field(default_factory=list)
    assets: list[dict[str, Any]] = field(default_factory=list)
    browser_version: str = ""
    loads: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)


def _brotli() -> Any:
    for name in ("brotli", "brotlicffi"):
        with contextlib.suppress(ImportError):
            return __import__(name)
    return None


async def drive(args: argparse.Namespace, origin: str, world: dict[str, Any]) -> Results:
    from playwright.async_api import async_playwright

    res = Results()
    timeout_ms = 30_000
    init = INIT_SCRIPT % world["rooms"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        res.browser_version = browser.version

        async def new_context(state: Any = None) -> Any:
            ctx = await browser.new_context(
                base_url=origin,
                locale="ja-JP",
                timezone_id="Asia/Tokyo",
                viewport=VIEWPORT,
                storage_state=state,
            )
            ctx.set_default_timeout(timeout_ms)
            await ctx.add_init_script(init)
            return ctx

        async def marks_when(page: Any, key: str) -> dict[str, Any]:
            await page.wait_for_function(f"() => window.__kkMarks && window.__kkMarks.{key}")
            await page.wait_for_timeout(150)  # let LCP settle
            return dict(await page.evaluate(PAINTS_JS))

        # Sign in once; the session cookie is reused by every signed-in context.
        ctx = await new_context()
        r = await ctx.request.post(
            "/api/auth/login", data={"login_id": world["login"], "password": world["password"]}
        )
        assert r.ok, await r.text()
        state = await ctx.storage_state()
        await ctx.close()

        log(f"sign-in page and app page: {args.repeats} cold + warm loads each")
        for _ in range(args.repeats):
            ctx = await new_context()
            page = await ctx.new_page()
            await page.goto("/")
            res.signin_cold.append(await marks_when(page, "formPainted"))
            await page.reload()
            res.signin_warm.append(await marks_when(page, "formPainted"))
            await ctx.close()

            ctx = await new_context(state)
            page = await ctx.new_page()
            responses: list[Any] = []
            page.on("response", lambda r, into=responses: into.append(r))
            await page.goto("/")
            res.app_cold.append(await marks_when(page, "roomsPainted"))
            if not res.assets:
                res.assets = await fetch_assets(page, responses)
            await page.reload()
            res.app_warm.append(await marks_when(page, "roomsPainted"))
            await ctx.close()

        log(f"room switch: {args.switches} switches over {len(world['small'])} rooms")
        ctx = await new_context(state)
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))

        async def switch(room_id: int, seq: int) -> dict[str, float]:
            try:
                args_ = {"roomId": room_id, "seq": seq, "timeoutMs": timeout_ms}
                return dict(await page.evaluate(SWITCH_JS, args_))
            except Exception as exc:
                raise RuntimeError(f"switch to room {room_id}: {exc}; page: {errors}") from exc

        await page.goto("/")
        await page.wait_for_function("() => window.__kkMarks && window.__kkMarks.roomsPainted")
        await page.wait_for_timeout(500)
        small = world["small"]
        current = 0
        for i in range(args.switches + 1):
            room = small[i % len(small)]
            t = await switch(room["id"], room["last_seq"])
            current = room["id"]
            if i:  # the first one warms up the page (the room view's code paths)
                res.switches.append(t)
            await page.wait_for_timeout(300)  # read receipts, presence: let the page go idle

        cdp = await ctx.new_cdp_session(page)
        await cdp.send("Performance.enable")
        big = world["big"]
        for rep in range(args.scrolls):
            log(
                f"big room ({world['big_count']:,} messages): open and scroll to the first "
                f"message at {args.scroll_speed:,} px/s ({rep + 1}/{args.scrolls})"
            )
            # Leave through a small room so the big room's view is made anew.
            room = next(r for r in small[rep:] + small if r["id"] != current)
            await switch(room["id"], room["last_seq"])
            current = big["id"]
            await page.wait_for_timeout(500)
            opened = await switch(big["id"], big["last_seq"])
            res.big_open.append(opened)
            await page.wait_for_timeout(500)
            idle = await page.evaluate(IDLE_FRAMES_JS, 2000)
            at_open = await dom_and_heap(page, cdp)
            scroll = await page.evaluate(
                SCROLL_JS,
                {
                    "firstSeq": big["first_seq"],
                    "speed": args.scroll_speed,
                    "timeoutMs": args.scroll_timeout * 1000,
                },
            )
            await page.wait_for_timeout(500)
            scroll["idle"] = idle
            scroll["at_open"] = at_open
            scroll["at_end"] = await dom_and_heap(page, cdp)
            res.scrolls.append(scroll)
            log(
                f"  reached={scroll['reached']} in {scroll['elapsed'] / 1000:.1f} s, "
                f"{len(scroll['pages'])} pages, {scroll['messages']:,} messages in the DOM"
            )
        if errors:
            log(f"page errors: {errors[:5]}")
        await ctx.close()
        await browser.close()
    return res


async def dom_and_heap(page: Any, cdp: Any) -> dict[str, Any]:
    await cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    dom = await page.evaluate(DOM_JS)
    return {
        "nodes": dom["nodes"],
        "messages": dom["messages"],
        "heap": metrics.get("JSHeapUsedSize"),
        "cdp_nodes": metrics.get("Nodes"),
    }


async def fetch_assets(page: Any, responses: list[Any]) -> list[dict[str, Any]]:
    await page.wait_for_load_state("networkidle")
    brotli = _brotli()
    seen: dict[str, dict[str, Any]] = {}
    for response in responses:
        kind = response.request.resource_type
        url = response.url
        path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else url
        if url in seen or not url.startswith("http") or path.startswith(("/api/", "/ws")):
            continue  # the page's files only, not its API calls
        with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as r:
            data = r.read()
            encoding = r.headers.get("Content-Encoding") or "identity"
        seen[url] = {
            "path": path,
            "kind": kind,
            "raw": len(data),
            "gzip": len(gzip.compress(data, compresslevel=6)),
            "br": len(brotli.compress(data, quality=11)) if brotli else None,
            "served_encoding": encoding,
        }
    return list(seen.values())


# -- the report ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _kb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:,.1f}"


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "—"
    return "PASS" if value < target else "FAIL"


def report(res: Results, args: argparse.Namespace, world: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def add(label: str, values: list[float | None], target: float | None = None, unit="") -> None:
        vals = [v for v in values if v is not None]
        m, p = med(vals), pct(vals, 0.95)
        rows.append(
            (
                label,
                _ms(m),
                _ms(p) if len(vals) > 2 else "",
                f"< {target:,.0f}{unit}" if target else "",
                verdict(m, target) if target else "",
            )
        )

    def since_nav(runs: list[dict[str, Any]], key: str) -> list[float | None]:
        return [r["marks"].get(key) if key in r.get("marks", {}) else r.get(key) for r in runs]

    add("sign-in page, cold: first paint (ms)", since_nav(res.signin_cold, "fp"), PAINT_TARGET_MS)
    add("  first contentful paint (ms)", since_nav(res.signin_cold, "fcp"), PAINT_TARGET_MS)
    add("  largest contentful paint (ms)", since_nav(res.signin_cold, "lcp"))
    add("  sign-in form painted (ms)", since_nav(res.signin_cold, "formPainted"), PAINT_TARGET_MS)
    add("sign-in page, warm: first contentful paint", since_nav(res.signin_warm, "fcp"))
    add("  sign-in form painted (ms)", since_nav(res.signin_warm, "formPainted"), PAINT_TARGET_MS)
    n = world["rooms"]
    add("app (cookie set), cold: first contentful paint", since_nav(res.app_cold, "fcp"))
    add(f"  room list painted, {n} rooms (ms)", since_nav(res.app_cold, "roomsPainted"))
    add("app (cookie set), warm: room list painted", since_nav(res.app_warm, "roomsPainted"))
    add(
        "room switch: newest message in the DOM (ms)",
        [s["shown"] for s in res.switches],
        SWITCH_TARGET_MS,
    )
    add("  newest message painted (ms)", [s["painted"] for s in res.switches], SWITCH_TARGET_MS)
    big = world["big_count"]
    add(f"open the {big:,}-message room: painted (ms)", [s["painted"] for s in res.big_open])

    lines = []
    head = ("", "median", "p95", "target", "")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]

    def fmt(r: tuple[str, ...]) -> str:
        return "| " + " | ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
        )

    lines.append(fmt(head) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [fmt(r) + " |" for r in rows]

    # The big room, per repeat (they take minutes each: no medians over two).
    for i, s in enumerate(res.scrolls, 1):
        deltas = s["deltas"]
        over = sum(1 for d in deltas if d > LONG_FRAME_MS)
        share = over / len(deltas) if deltas else 0.0
        p95 = pct(deltas, 0.95) or 0.0
        pages = s["pages"]
        quarter = max(1, len(pages) // 4)
        # The page's work (parse, render, layout) may land just before or after the frame
        # that first sees it: the longest interval around it.
        around = [max(deltas[max(0, i - 1) : i + 3]) for _, i in pages]
        first_q, last_q = around[:quarter], around[-quarter:]
        long_time = sum(d for d in deltas if d > LONG_FRAME_MS)
        time_share = long_time / sum(deltas) if deltas else 0.0
        smooth = p95 <= LONG_FRAME_MS and max(share, time_share) <= LONG_FRAME_SHARE
        grew = s["at_end"]["nodes"] > 2 * s["at_open"]["nodes"]
        lines.append("")
        lines.append(
            f"{big:,}-message room, run {i}: scrolled up at {args.scroll_speed:,} px/s — "
            + (
                f"first message reached in {s['elapsed'] / 1000:,.1f} s"
                if s["reached"]
                else f"NOT reached in {s['elapsed'] / 1000:,.0f} s"
            )
            + f", {len(pages)} pages loaded, {s['messages']:,} messages in the DOM"
        )
        lines.append(
            f"  frames: {len(deltas):,}, interval median {_ms1(med(deltas))} ms, "
            f"p95 {_ms1(p95)} ms, max {_ms1(max(deltas) if deltas else None)} ms, "
            f"over 50 ms {over:,} ({share:.1%} of frames, {long_time / 1000:,.1f} s = "
            f"{time_share:.1%} of the time)  [target p95 ≤ 50 ms, ≤ 5 % of frames and of the "
            f"time in frames over 50 ms: {'PASS' if smooth else 'FAIL'}]"
        )
        lines.append(
            f"  idle frames before scrolling (2 s): median {_ms1(med(s['idle']))} ms, "
            f"p95 {_ms1(pct(s['idle'], 0.95))} ms"
        )
        lines.append(
            f"  longest frame around each page loaded: median {_ms1(med(first_q))} ms over the "
            f"first {quarter} pages, {_ms1(med(last_q))} ms over the last {quarter}"
        )
        lt = s["longTasks"]
        lines.append(
            f"  long tasks (> 50 ms): {len(lt):,}, total {sum(lt) / 1000:,.1f} s, "
            f"longest {_ms1(max(lt) if lt else None)} ms"
        )
        o, e = s["at_open"], s["at_end"]
        lines.append(
            f"  DOM elements: {o['nodes']:,} at open → {e['nodes']:,} at the first message "
            f"(CDP Nodes {o['cdp_nodes']:,.0f} → {e['cdp_nodes']:,.0f}); "
            f"JS heap after GC: {o['heap'] / 1e6:,.1f} MB → {e['heap'] / 1e6:,.1f} MB  "
            f"[DOM bounded: {'FAIL — grows with the history' if grew else 'PASS'}]"
        )

    # Assets.
    brotli = any(a["br"] is not None for a in res.assets)
    lines.append("")
    lines.append(
        "Assets the app page loaded (bytes as served; compressed here — the server itself sends "
        f"them {_encodings(res.assets)}):"
    )
    lines.append(f"| file | type | raw | gzip -6 | {'brotli 11' if brotli else 'brotli'} |")
    lines.append("|---|---|---:|---:|---:|")
    for a in sorted(res.assets, key=lambda a: (a["kind"], a["path"])):
        br = f"{a['br']:,}" if a["br"] is not None else "n/a"
        lines.append(f"| {a['path']} | {a['kind']} | {a['raw']:,} | {a['gzip']:,} | {br} |")
    code = [a for a in res.assets if a["kind"] in ("script", "stylesheet")]
    total_raw = sum(a["raw"] for a in code)
    total_gz = sum(a["gzip"] for a in code)
    total_br = sum(a["br"] for a in code) if brotli else None
    lines.append(
        f"| **JS + CSS: {len(code)} files** | | {total_raw:,} | {total_gz:,} | "
        f"{f'{total_br:,}' if total_br is not None else 'n/a (no brotli module)'} |"
    )
    everything = sum(a["gzip"] for a in res.assets)
    lines.append(
        f"JS + CSS gzip -6: {_kb(total_gz)} KB against < {_kb(BUDGET_BYTES)} KB: "
        f"{'PASS' if total_gz < BUDGET_BYTES else 'FAIL'}; everything the page loaded "
        f"(HTML, JSON, SVG too): {_kb(everything)} KB gzip"
    )
    return "\n".join(lines)


def _ms1(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _encodings(assets: list[dict[str, Any]]) -> str:
    kinds = sorted({a["served_encoding"] for a in assets})
    return "with Content-Encoding " + "/".join(kinds)


def git_state() -> str:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = run("git", "rev-parse", "--short", "HEAD") or "?"
    dirty = run("git", "status", "--porcelain", "--", "web")
    return commit + (" + uncommitted changes in web/" if dirty else "")


def run(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="kakehashi-web-bench-"))
    src = tmp / "src"
    code = git_state()
    web_digest = snapshot(src)
    env = child_env(tmp / "data", src)
    world_path = tmp / "world.json"
    res = Results()
    res.loads.append(("start", os.getloadavg()))
    server = None
    try:
        log(f"seeding {SMALL_ROOMS} rooms and one of {args.big:,} messages in {tmp}")
        started = time.monotonic()
        subprocess.run(
            [sys.executable, str(BENCH), "seed", "--big", str(args.big), "--out", str(world_path)],
            env=env,
            cwd=src,
            check=True,
        )
        log(f"  seeded in {time.monotonic() - started:.1f} s")
        world = json.loads(world_path.read_text())
        port = free_port()
        server_log = tmp / "server.log"
        log(f"starting python -m chat serve on 127.0.0.1:{port}")
        with server_log.open("ab") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chat",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--lgwan-port",
                    "0",
                ],
                cwd=src,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_healthy(server, port, server_log)
        drive_res = asyncio.run(drive(args, f"http://127.0.0.1:{port}", world))
        drive_res.loads = [*res.loads, ("end", os.getloadavg())]
        res = drive_res
    finally:
        if server is not None:
            stop(server)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    raw = REPO / "artifacts" / "bench-web.json"  # the raw figures (git-ignored)
    raw.parent.mkdir(exist_ok=True)
    raw.write_text(json.dumps({"args": vars(args), "world": world, **res.__dict__}))
    loads = "; ".join(f"{when} {a:.2f} {b:.2f} {c:.2f}" for when, (a, b, c) in res.loads)
    header = [
        f"Kakehashi browser client bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, code at "
        f"{code} (web/ copied at the start, sha256 {web_digest})",
        f"{os.cpu_count()} CPUs, load average (1/5/15 min) {loads}; Python "
        f"{platform.python_version()}, Chromium {res.browser_version} headless, "
        f"{VIEWPORT['width']}×{VIEWPORT['height']}; SQLite; {args.repeats} page loads, "
        f"{args.switches} room switches, {args.scrolls} scroll run(s)",
        "",
    ]
    return "\n".join(header) + report(res, args, world)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    seed = sub.add_parser("seed", help=argparse.SUPPRESS)
    seed.add_argument("--big", type=int, required=True)
    seed.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--big", type=int, help="messages in the big room (default 10,000)")
    parser.add_argument("--repeats", type=int, help="cold + warm page loads (default 10)")
    parser.add_argument("--switches", type=int, help="room switches measured (default 30)")
    parser.add_argument("--scrolls", type=int, help="big-room scroll runs (default 1)")
    parser.add_argument(
        "--scroll-speed", type=int, default=10_000, help="px/s scrolled up (default 10,000)"
    )
    parser.add_argument(
        "--scroll-timeout", type=int, default=1200, help="s allowed per scroll run (default 1200)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args(argv)
    if args.cmd == "seed":
        asyncio.run(_seed(args.big, args.out))
        return 0
    defaults = (
        {"big": 2_000, "repeats": 3, "switches": 8, "scrolls": 1}
        if args.quick
        else {"big": 10_000, "repeats": 10, "switches": 30, "scrolls": 1}
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    print(run(args), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
