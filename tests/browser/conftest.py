"""Headless Chromium (Debian's ``chromium``) driven by Playwright against a real server.

One browser per session; each test gets fresh contexts from ``browser_context`` that record
every request, console error and page error, so a test can assert the page never talks to
another host and never raises.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.harness import PASSWORD, World

CHROMIUM = os.environ.get("KAKEHASHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@dataclass
class Recorder:
    """What one browser context did: requests, console errors, uncaught page errors, dialogs."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def foreign(self, origin: str) -> list[str]:
        host = urlsplit(origin).netloc
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "blob:")) and urlsplit(url).netloc != host
        ]


@dataclass
class Client:
    context: BrowserContext
    page: Page
    recorder: Recorder


ContextFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def browser_context(browser: Browser, world: World) -> AsyncIterator[ContextFactory]:
    """``await browser_context(viewport=..., locale=...)`` → a Client with one page open."""
    made: list[Client] = []

    async def make(**options: Any) -> Client:
        options.setdefault("locale", "ja-JP")
        options.setdefault("timezone_id", "Asia/Tokyo")
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(base_url=world.server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        recorder = Recorder()
        page = await context.new_page()
        context.on("request", lambda r: recorder.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and recorder.console_errors.append(m.text))
        page.on("pageerror", lambda e: recorder.page_errors.append(str(e)))

        async def on_dialog(dialog: Any) -> None:
            recorder.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        client = Client(context, page, recorder)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.context.close()
    for client in made:
        # Every page stayed on our server and never threw.
        assert client.recorder.foreign(world.server.url) == []
        assert client.recorder.page_errors == []
        assert client.recorder.dialogs == []


async def sign_in(client: Client, login_id: str, password: str = PASSWORD) -> Page:
    page = client.page
    await page.goto("/")
    await page.get_by_label("ログインID").fill(login_id)
    await page.get_by_label("パスワード").fill(password)
    await page.get_by_role("button", name="ログイン").click()
    await page.get_by_role("link", name="+ 新しいチャット").wait_for()
    return page


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


@pytest.fixture
async def side_context(browser: Browser, world: World) -> AsyncIterator[ContextFactory]:
    """``await side_context("lgwan")``: like ``browser_context``, but the pages open on that
    side's listener (``world.server.url_for(side)``) and must stay on it."""
    made: list[tuple[Client, str]] = []

    async def make(side: str, **options: Any) -> Client:
        options.setdefault("locale", "ja-JP")
        options.setdefault("timezone_id", "Asia/Tokyo")
        options.setdefault("viewport", {"width": 1280, "height": 800})
        origin = world.server.url_for(side)
        context = await browser.new_context(base_url=origin, **options)
        context.set_default_timeout(TIMEOUT_MS)
        recorder = Recorder()
        page = await context.new_page()
        context.on("request", lambda r: recorder.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and recorder.console_errors.append(m.text))
        page.on("pageerror", lambda e: recorder.page_errors.append(str(e)))

        async def on_dialog(dialog: Any) -> None:
            recorder.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        client = Client(context, page, recorder)
        made.append((client, origin))
        return client

    yield make
    for client, _ in made:
        await client.context.close()
    for client, origin in made:
        assert client.recorder.foreign(origin) == []
        assert client.recorder.page_errors == []
        assert client.recorder.dialogs == []
