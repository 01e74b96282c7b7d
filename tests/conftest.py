from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from chat import accounts, audit, licenses, passwords
from chat.settings import Settings
from tests.backends import Backends
from tests.harness import Server, World


@pytest.fixture(scope="session", autouse=True)
def test_cost_argon2() -> Iterator[None]:
    """argon2id at a test cost: same algorithm and code path, a hash in milliseconds.  Tests
    that run the CLI as a process still hash at the production profile."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        yield


@pytest.fixture(scope="session")
async def backends(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backends]:
    b = Backends(tmp_path_factory.mktemp("db"))
    await b.prepare_template()
    yield b
    await b.cleanup()


@pytest.fixture
async def settings(backends: Backends, tmp_path: Path) -> AsyncIterator[Settings]:
    url = await backends.new_database_url()
    yield Settings(
        env="test",
        data_dir=tmp_path / "data",
        database_url=url,
        redis_url=backends.redis_url(),
        redis_prefix=backends.redis_prefix(),
        log_level="warning",
    )
    await backends.drop(url)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    srv = Server(settings)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def world(server: Server) -> AsyncIterator[World]:
    """An organisation with an administrator and three members, each signed in."""
    assert server.services is not None
    async with server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "テスト市")
        for side in ("lgwan", "internet"):
            await licenses.set_pool(uow, audit.SYSTEM, org.id, side, 1000)
    w = World(server, org.id)
    await w.add_person("admin", "管理者", role="admin")
    await w.add_person("alice", "青木 アリス")
    await w.add_person("bob", "馬場 ボブ")
    await w.add_person("carol", "佐藤 キャロル")
    yield w
    await w.close()
