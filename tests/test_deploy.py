"""docker-compose.yml describes the scale-out, and every service command of ours names a
real entry point."""

from __future__ import annotations

from pathlib import Path

import yaml

from chat.cli import build_parser
from sanitizer.cli import _parser as sanitizer_parser

ROOT = Path(__file__).resolve().parent.parent


def test_compose_services_name_real_entry_points() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "app1", "app2", "worker"} <= set(services)
    ours = {name: s for name, s in services.items() if s.get("image", "").startswith("kakehashi")}
    assert len(ours) >= 4
    parser = build_parser()
    for name, service in ours.items():
        command = service["command"]
        assert command[0] == "kakehashi", name
        assert service["environment"]["KAKEHASHI_DATABASE_URL"].startswith("postgresql")
        assert service["environment"]["KAKEHASHI_REDIS_URL"].startswith("redis://")
        if command[1] in ("sanitize", "worker"):
            sanitizer_parser().parse_args(command[1:])  # SystemExit on an unknown flag
            continue
        parser.parse_args(command[1:])  # raises SystemExit(2) on an unknown command or flag


def test_pyproject_declares_the_console_script() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'kakehashi = "chat.cli:main"' in text
