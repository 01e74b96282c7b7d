"""Command line: `kakehashi sanitize INPUT -o OUTPUT [--json]` and `kakehashi worker ...`.

Exit codes of `sanitize`: 0 when OUTPUT was written (clean or sanitized), 1 when the file
was blocked (no OUTPUT file exists afterwards), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from sanitizer import limits

EXIT_WRITTEN = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kakehashi", description="Kakehashi sanitiser (無害化)")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sanitize", help="sanitise one file")
    s.add_argument("input", metavar="INPUT")
    s.add_argument("-o", "--output", metavar="OUTPUT", required=True)
    s.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    s.add_argument("--filename", help="the name the sender gave (default: INPUT's name)")
    s.add_argument("--timeout-s", type=float, default=limits.SANDBOX_TIMEOUT_S)

    w = sub.add_parser("worker", help="run sanitisation jobs from a queue")
    w.add_argument("--redis-url", "--queue-url", dest="queue_url", required=True)
    w.add_argument("--dir", required=True, help="shared directory holding inputs and outputs")
    w.add_argument("--prefix", default="kakehashi:sanitizer", help="Redis key prefix")
    w.add_argument("--concurrency", type=int, default=limits.WORKER_CONCURRENCY)
    w.add_argument("--consumer", default=None, help="consumer name (default: host-pid)")
    w.add_argument("--claim-idle-ms", type=int, default=limits.JOB_CLAIM_IDLE_MS)
    w.add_argument("--heartbeat-s", type=float, default=limits.JOB_HEARTBEAT_S)
    w.add_argument("--timeout-s", type=float, default=limits.SANDBOX_TIMEOUT_S)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except _UsageError as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command == "sanitize":
        return _sanitize(args)
    return _worker(args)


def _sanitize(args: argparse.Namespace) -> int:
    from sanitizer.core import sanitize

    source = Path(args.input)
    output = Path(args.output)
    if not source.is_file():
        print(f"kakehashi: INPUT is not a file: {source}", file=sys.stderr)
        return EXIT_USAGE
    if not output.parent.is_dir() or output.is_dir():
        print(f"kakehashi: cannot write OUTPUT: {output}", file=sys.stderr)
        return EXIT_USAGE
    result = sanitize(
        source,
        filename=args.filename or source.name,
        output_path=output,
        timeout_s=args.timeout_s,
    )
    if args.json:
        print(result.report.to_json())
    else:
        report = result.report
        line = f"{report.verdict}: {report.detected_type}"
        if report.reason:
            line += f"\n{report.reason.ja}\n{report.reason.en}"
        for item in report.removed:
            line += f"\n- {item.kind}: {item.where}"
        for w in report.warnings:
            line += f"\n! {w.ja} / {w.en}"
        print(line)
    return EXIT_BLOCKED if result.verdict == "blocked" else EXIT_WRITTEN


def _worker(args: argparse.Namespace) -> int:
    from sanitizer.worker import Worker, open_queue

    if args.queue_url.startswith("memory://"):
        print("kakehashi: memory:// queues live inside the app; use redis://", file=sys.stderr)
        return EXIT_USAGE
    if not os.path.isdir(args.dir):
        print(f"kakehashi: --dir is not a directory: {args.dir}", file=sys.stderr)
        return EXIT_USAGE
    if args.concurrency < 1:
        print("kakehashi: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        queue = open_queue(
            args.queue_url,
            prefix=args.prefix,
            claim_idle_ms=args.claim_idle_ms,
            consumer=args.consumer,
        )
        worker = Worker(
            queue,
            directory=Path(args.dir),
            concurrency=args.concurrency,
            heartbeat_s=args.heartbeat_s,
            timeout_s=args.timeout_s,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            await worker.run(stop)
        finally:
            await queue.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0
