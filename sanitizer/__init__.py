"""Kakehashi's sanitiser (無害化): content disarm and reconstruction for attachments.

    from sanitizer import sanitize
    result = sanitize("/path/to/upload", filename="報告書.docm", output_path="/path/out")
    result.verdict          # "clean" | "sanitized" | "blocked"
    result.report.to_json()

Importing this package does no work: parsers are imported by the sandboxed child.
"""

from __future__ import annotations

from sanitizer.core import SanitizeResult, sanitize
from sanitizer.report import Blocked, Report

__all__ = ["Blocked", "Report", "SanitizeResult", "sanitize"]
