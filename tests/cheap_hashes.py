"""argon2id at a test cost.  The world fixture hashes and verifies eight passwords per test;
at the production profile (RFC 9106 low-memory: 64 MiB, 3 passes) that is most of a test's
time.  The hashes stay argon2id and go through the same code; only the cost is lower, and a
hash made at either cost verifies (the parameters are in the hash).  Import the fixture into a
test module to use it: ``from tests.cheap_hashes import cheap_argon2  # noqa: F401``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from chat import passwords


@pytest.fixture(scope="module", autouse=True)
def cheap_argon2() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        yield
