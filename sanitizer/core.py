"""`sanitize()`: the library entry point, on the trusted side of the sandbox.

The parent checks the size (before any parsing), hands the file to a sandboxed child
(`_job_child`), and reads back two files written by the child: the rendition and a small
JSON result. Both are `untrusted_*` until checked here: the JSON against its schema, the
codes against the catalogue (sentences are never taken from the child), the rendition
against MAX_OUTPUT_BYTES. Only then is the rendition renamed into place (atomically).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanitizer import limits, mimes, sandbox
from sanitizer.report import REASONS, VERDICTS, WARNINGS, Blocked, Removed, Report, reason, warning

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9.+\-]{0,63}/[a-zA-Z0-9][a-zA-Z0-9.+\-]{0,127}$")
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SanitizeResult:
    """The outcome for one file.

    `output` is the path of the rendition (None when blocked); the caller owns that file.
    """

    verdict: str
    detected_type: str
    output: Path | None
    output_filename: str | None
    output_mime: str | None
    report: Report

    def read_output(self) -> bytes:
        if self.output is None:
            raise ValueError("blocked: there is no output")
        return self.output.read_bytes()


def sanitize(
    untrusted: str | os.PathLike[str] | bytes,
    *,
    filename: str | None,
    output_path: str | os.PathLike[str] | None = None,
    timeout_s: float = limits.SANDBOX_TIMEOUT_S,
    use_sandbox: bool = True,
) -> SanitizeResult:
    """Sanitise a file given as a path or as bytes.

    `filename` is the name the sender gave (used only to refuse more: type mismatch,
    executable names, CSV treatment). The rendition is written to `output_path` (atomically:
    it appears complete or not at all) or, when None, to a new temporary file. When the
    verdict is `blocked` no output exists (a file already at `output_path` is removed).
    `use_sandbox=False` runs the parsers in this process (tests and benchmarks only).
    """
    final = Path(output_path) if output_path is not None else None
    size = _input_size(untrusted)
    if size > limits.MAX_INPUT_BYTES:
        return _blocked_result("file_too_large", final)
    out_dir = final.parent if final is not None else Path(tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix=".kakehashi-sanitize-", dir=out_dir))
    try:
        os.chmod(workdir, 0o700)
        if isinstance(untrusted, bytes):
            input_path = workdir / "input"
            input_path.write_bytes(untrusted)
        else:
            input_path = Path(untrusted)
        untrusted_output = workdir / "output"
        untrusted_result = workdir / "result.json"
        args = (str(input_path), filename, str(untrusted_output), str(untrusted_result))
        if use_sandbox:
            outcome = sandbox.run(_job_child, args, sandbox.SandboxLimits(timeout_s=timeout_s))
            if outcome.timed_out or outcome.killed_by_cpu_limit:
                return _blocked_result("timeout", final)
        else:
            _job_child(*args, network_isolated=False, confined=False)
        report = _checked_report(untrusted_result, filename)
        if report.verdict == "blocked":
            return _blocked_result_from(report, final)
        size_out = untrusted_output.stat().st_size
        if size_out > limits.MAX_OUTPUT_BYTES:
            return _blocked_result("limit_exceeded", final)
        if final is None:
            fd, name = tempfile.mkstemp(prefix="kakehashi-sanitized-", dir=out_dir)
            os.close(fd)
            final = Path(name)
        os.replace(untrusted_output, final)
        os.chmod(final, 0o644)
        return SanitizeResult(
            verdict=report.verdict,
            detected_type=report.detected_type,
            output=final,
            output_filename=report.output_filename,
            output_mime=report.output_mime,
            report=report,
        )
    except _Untrusted:
        return _blocked_result("crashed", final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _input_size(untrusted: str | os.PathLike[str] | bytes) -> int:
    if isinstance(untrusted, bytes):
        return len(untrusted)
    info = os.stat(untrusted)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"not a regular file: {os.fspath(untrusted)!r}")
    return info.st_size


def _blocked_result(code: str, final: Path | None, detected: str | None = None) -> SanitizeResult:
    report = Report.blocked(code, detected or "application/octet-stream")
    return _blocked_result_from(report, final)


def _blocked_result_from(report: Report, final: Path | None) -> SanitizeResult:
    if final is not None:
        final.unlink(missing_ok=True)
    return SanitizeResult("blocked", report.detected_type, None, None, None, report)


class _Untrusted(Exception):
    """The child's result is missing or does not follow the schema."""


def _checked_report(untrusted_result: Path, filename: str | None) -> Report:
    """Build a Report from the child's JSON, trusting nothing in it."""
    from sanitizer.engine import output_filename

    try:
        with open(untrusted_result, "rb") as f:
            raw = f.read(limits.MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise _Untrusted("no result") from exc
    if len(raw) > limits.MAX_REPORT_BYTES:
        raise _Untrusted("result too large")
    try:
        untrusted: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _Untrusted("result not JSON") from exc
    if not isinstance(untrusted, dict):
        raise _Untrusted("result not an object")
    verdict = untrusted.get("verdict")
    detected = untrusted.get("detected_type")
    if verdict not in VERDICTS or not isinstance(detected, str) or not _MIME.match(detected):
        raise _Untrusted("verdict or type")
    if verdict == "blocked":
        code = untrusted.get("reason")
        if code not in REASONS:
            raise _Untrusted("reason")
        return Report(verdict="blocked", detected_type=detected, reason=reason(code))
    out_mime = untrusted.get("output_mime")
    if out_mime not in mimes.OUTPUT_MIMES:
        raise _Untrusted("output type")
    untrusted_removed = untrusted.get("removed")
    untrusted_warnings = untrusted.get("warnings")
    if not isinstance(untrusted_removed, list) or not isinstance(untrusted_warnings, list):
        raise _Untrusted("lists")
    removed: list[Removed] = []
    for item in untrusted_removed[: limits.MAX_REPORT_ITEMS]:
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
        ):
            raise _Untrusted("removed item")
        kind, where = item
        if not _KIND.match(kind):
            raise _Untrusted("removed kind")
        removed.append(Removed(kind, _UNSAFE_CHARS.sub("?", where)[: limits.MAX_WHERE_CHARS]))
    codes = [w for w in untrusted_warnings if isinstance(w, str) and w in WARNINGS]
    not_listed = max(0, len(untrusted_removed) - limits.MAX_REPORT_ITEMS)
    if not_listed:
        codes.append("report_truncated")
    if removed and verdict == "clean":
        raise _Untrusted("clean with removals")
    return Report(
        verdict="sanitized" if removed else "clean",
        detected_type=detected,
        removed=removed,
        warnings=[warning(c) for c in dict.fromkeys(codes)],
        output_mime=out_mime,
        output_filename=output_filename(filename, out_mime),
        removed_not_listed=not_listed,
    )


def _job_child(
    input_path: str,
    filename: str | None,
    output_path: str,
    result_path: str,
    *,
    network_isolated: bool,
    confined: bool = True,
) -> None:
    """The sandboxed side: detect, disarm, write the rendition and the JSON result.

    The input is never copied through a pipe: the child reads the file at `input_path` and
    writes the rendition at `output_path` itself (a PDF is rewritten from file to file).
    """
    from sanitizer.context import Context
    from sanitizer.engine import process_file

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    with (
        open(input_path, "rb") as untrusted_in,
        os.fdopen(os.open(output_path, flags, 0o600), "wb") as out,
        os.fdopen(os.open(result_path, flags, 0o600), "w", encoding="utf-8") as result,
    ):
        if confined:
            sandbox.drop_privileges()
        ctx = Context(filename=filename)
        body: dict[str, Any]
        try:
            detected, out_mime = process_file(untrusted_in, out, ctx)
            body = {
                "verdict": "sanitized" if ctx.removed else "clean",
                "detected_type": detected,
                "output_mime": out_mime,
                "removed": [[r.kind, r.where] for r in ctx.removed],
                "warnings": ctx.warnings,
                "reason": None,
            }
        except Blocked as exc:
            body = {
                "verdict": "blocked",
                "detected_type": exc.detected_type or "application/octet-stream",
                "reason": exc.code,
                "detail": exc.detail[:500],
            }
        except OSError as exc:  # EFBIG from RLIMIT_FSIZE while writing the rendition
            body = {
                "verdict": "blocked",
                "detected_type": "application/octet-stream",
                "reason": "limit_exceeded",
                "detail": str(exc)[:500],
            }
        except MemoryError:
            body = {
                "verdict": "blocked",
                "detected_type": "application/octet-stream",
                "reason": "limit_exceeded",
                "detail": "memory",
            }
        body["network_isolated"] = network_isolated
        # For logs and the benchmark only (the parent ignores it): this job's peak RSS.
        body["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result.write(json.dumps(body, ensure_ascii=False))
