"""The sandbox: limits, no network, timeouts that kill the whole group; the parent survives."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import sancorpus as c

from sanitizer import limits, sandbox, sanitize

FAST = sandbox.SandboxLimits(timeout_s=10)


def _sleep_with_grandchild(pid_file: str, *, network_isolated: bool) -> None:
    child = subprocess.Popen(["sleep", "60"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(60)


def _allocate(marker: str, *, network_isolated: bool) -> None:
    try:
        block = bytearray(3 * 1024 * 1024 * 1024)
        Path(marker).write_text(f"allocated {len(block)}")
    except MemoryError:
        Path(marker).write_text("MemoryError")


def _connect(marker: str, port: int, *, network_isolated: bool) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        Path(marker).write_text("connected")
    except OSError as exc:
        Path(marker).write_text(f"refused {exc.errno} isolated={network_isolated}")


def _crash(*, network_isolated: bool) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _write(path: str, size: int, *, network_isolated: bool) -> None:
    try:
        with open(path, "wb") as f:
            f.write(b"x" * size)
    except OSError as exc:
        Path(path + ".err").write_text(str(exc.errno))


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    outcome = sandbox.run(
        _sleep_with_grandchild, (str(pid_file),), sandbox.SandboxLimits(timeout_s=1)
    )
    assert outcome.timed_out
    assert time.monotonic() - start < 8
    grandchild = int(pid_file.read_text())
    assert _dead_or_zombie(grandchild)


def _dead_or_zombie(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_memory_limit(tmp_path: Path) -> None:
    marker = tmp_path / "m"
    sandbox.run(_allocate, (str(marker),), FAST)
    assert marker.read_text() == "MemoryError"


def test_no_network_in_the_child(tmp_path: Path) -> None:
    # Redis listens on 6379 on this machine: the parent can connect, the child cannot.
    socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    marker = tmp_path / "n"
    sandbox.run(_connect, (str(marker), 6379), FAST)
    assert marker.read_text().startswith("refused")
    assert "isolated=True" in marker.read_text()


def test_crash_is_reported_and_parent_survives(tmp_path: Path) -> None:
    outcome = sandbox.run(_crash, (), FAST)
    assert outcome.exitcode == -signal.SIGSEGV
    assert not outcome.timed_out


def test_file_size_limit(tmp_path: Path) -> None:
    target = tmp_path / "big"
    sandbox.run(_write, (str(target), 4096), sandbox.SandboxLimits(timeout_s=10, file_bytes=1024))
    assert (tmp_path / "big.err").read_text() == "27"  # EFBIG
    assert target.stat().st_size <= 1024


def test_sanitize_times_out_with_a_verdict(tmp_path: Path) -> None:
    result = sanitize(
        c.pdf_benign(pages=20), filename="a.pdf", output_path=tmp_path / "o", timeout_s=0.001
    )
    assert result.verdict == "blocked"
    assert result.report.reason is not None and result.report.reason.code == "timeout"
    assert not (tmp_path / "o").exists()
    assert not list(tmp_path.iterdir())  # no work directory left behind


def test_per_job_overhead_is_small() -> None:
    sandbox.warm_up()
    start = time.perf_counter()
    for _ in range(10):
        sandbox.run(sandbox._noop, (), FAST)
    per_job = (time.perf_counter() - start) / 10
    assert per_job < 0.2  # the benchmark measures the real figure (target 50 ms)
    assert limits.SANDBOX_TIMEOUT_S > 0


def test_jobs_do_not_rerun_the_callers_main_module(tmp_path: Path) -> None:
    """multiprocessing re-runs the parent's main script in each child by default; for the
    `kakehashi` console script that is the whole chat app (seconds per job)."""
    marker = tmp_path / "imported"
    script = tmp_path / "main.py"
    script.write_text(
        "import sys\n"
        "if __name__ != '__main__':\n"
        f"    open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
        "from sanitizer import sanitize\n"
        "if __name__ == '__main__':\n"
        "    print(sanitize(b'hello\\n', filename='a.txt', output_path=sys.argv[1]).verdict)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"
    assert (tmp_path / "out").read_bytes() == b"hello\n"
    assert not marker.exists()
