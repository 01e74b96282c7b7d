"""`python -m sanitizer sanitize INPUT -o OUTPUT --json` / `python -m sanitizer worker ...`."""

from __future__ import annotations

from sanitizer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
