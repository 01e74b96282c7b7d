"""``KAKEHASHI_LOG_LEVEL`` sets the app's loggers, not only uvicorn's."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from chat.cli import configure_logging
from chat.settings import Settings


@pytest.mark.parametrize(("name", "level"), [("warning", logging.WARNING), ("trace", 5)])
def test_the_log_level_setting_applies_to_the_app_loggers(
    monkeypatch: pytest.MonkeyPatch, name: str, level: int
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # restored after the test
    configure_logging(Settings(log_level=name))
    assert root.level == level
    assert logging.getLogger("chat.sanitizing").isEnabledFor(logging.INFO) is (level < logging.INFO)


def test_an_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAKEHASHI_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()
