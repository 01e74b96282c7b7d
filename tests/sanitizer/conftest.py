from __future__ import annotations

from pathlib import Path

import pytest
from sancorpus import Run

from sanitizer import SanitizeResult, sanitize


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Sanitise bytes in the real sandbox; returns the result and the output's bytes."""
    counter = iter(range(10_000))

    def _run(
        data: bytes, filename: str | None, *, use_sandbox: bool = True
    ) -> tuple[SanitizeResult, bytes | None]:
        out = tmp_path / f"out-{next(counter)}"
        result = sanitize(data, filename=filename, output_path=out, use_sandbox=use_sandbox)
        if result.verdict == "blocked":
            assert not out.exists()
            assert result.output is None
            return result, None
        assert result.output == out
        return result, out.read_bytes()

    return _run
