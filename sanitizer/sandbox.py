"""Running hostile parsers in a confined child process.

Each job runs in a fresh child forked from a *forkserver* (multiprocessing's), a clean
single-threaded process that has already imported the parsers (`sanitizer._preload`), so a
job costs a fork, not an interpreter start. The child, before touching the file:

- starts its own session (process group), so a timeout kills it and anything it started;
- asks to be killed if its parent dies (PR_SET_DEATHSIG);
- sets RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE and RLIMIT_CORE=0;
- enters a new, empty network namespace (`unshare(CLONE_NEWNET)`); where that is not
  permitted it disables the socket module instead and says so (`network_isolated=False`);
- the job then opens its files and drops root for `nobody` (see `drop_privileges`).

The parent waits at most `timeout_s` of wall-clock time, then SIGKILLs the process group.
Nothing the child sends back is unpickled: results come back as files that the caller reads
as `untrusted_*` and checks against limits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import logging
import multiprocessing
import os
import resource
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

from sanitizer import limits

log = logging.getLogger(__name__)

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_NOBODY = 65534
_M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
_MALLOC_KEEP_BYTES = 512 * 1024 * 1024
_MALLOC_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_PRELOAD = ["sanitizer._preload"]
_lock = threading.Lock()
_context: Any = None


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = limits.SANDBOX_TIMEOUT_S
    cpu_s: int = limits.SANDBOX_CPU_S
    memory_bytes: int = limits.SANDBOX_MEMORY_BYTES
    file_bytes: int = limits.SANDBOX_FILE_BYTES
    max_open_files: int = limits.SANDBOX_MAX_OPEN_FILES
    nice: int = limits.SANDBOX_NICE


@dataclass(frozen=True)
class SandboxOutcome:
    """How the child ended: its exit code (negative: killed by that signal) and whether the
    parent had to kill it for running out of wall-clock time."""

    exitcode: int | None
    timed_out: bool

    @property
    def killed_by_cpu_limit(self) -> bool:
        return self.exitcode == -signal.SIGXCPU


def _get_context() -> Any:
    global _context
    with _lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context


def warm_up() -> None:
    """Start the forkserver now (it starts on first use otherwise)."""
    run(_noop, (), SandboxLimits(timeout_s=60))


def _noop(network_isolated: bool) -> None:
    return None


class _Popen(popen_forkserver.Popen):
    """multiprocessing's forkserver launch, without the caller's `__main__` module.

    By default every child runs the parent's main script again (`__mp_main__`) before the
    job: for the `kakehashi` console script that is the whole chat app, ~1.7 s per job.
    (`set_forkserver_preload(["__main__"])` would avoid it, but Python 3.11's forkserver
    never passes the main path, so it does nothing.) Jobs only need `sanitizer`, which the
    forkserver has imported: targets must be functions of importable modules, never of
    `__main__`. The rest is `popen_forkserver.Popen._launch` (CPython 3.11) unchanged.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        fds = self._fds  # type: ignore[attr-defined]  # (not in typeshed's stubs)
        self.sentinel, w = forkserver.connect_to_new_process(fds)
        parent_w = os.dup(w)
        close_fds = util.close_fds  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


def run(
    target: Callable[..., None], args: tuple[Any, ...], sandbox_limits: SandboxLimits
) -> SandboxOutcome:
    """Run `target(*args, network_isolated=...)` confined; blocks until it ends or is killed.

    `target` must be a module-level function of an importable module (not of `__main__`).
    """
    _get_context()  # starts the forkserver with its preloads on first use
    process = _Process(target=_child_entry, args=(target, args, sandbox_limits), daemon=True)
    process.start()
    pid = process.pid
    process.join(sandbox_limits.timeout_s)
    timed_out = process.is_alive()
    _kill_group(pid)
    process.join(10)
    exitcode = process.exitcode
    process.close() if exitcode is not None else None
    return SandboxOutcome(exitcode=exitcode, timed_out=timed_out)


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _child_entry(target: Callable[..., None], args: tuple[Any, ...], lim: SandboxLimits) -> None:
    os.setsid()
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    confine(lim)
    _keep_freed_memory(libc)
    isolated = isolate_network(libc)
    target(*args, network_isolated=isolated)


def _keep_freed_memory(libc: Any) -> None:
    """Tell malloc to keep what a job frees for its next allocations instead of returning it
    to the kernel: a fresh child would otherwise fault in new zeroed pages for every big
    buffer (a 20 MiB PDF: ~9,600 page faults instead of ~2,200, a third of its time). The
    child is short-lived and RLIMIT_AS still caps it."""
    if libc is None:
        return
    libc.mallopt(_M_TRIM_THRESHOLD, _MALLOC_KEEP_BYTES)
    libc.mallopt(_M_MMAP_THRESHOLD, _MALLOC_MMAP_THRESHOLD_BYTES)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """libc through ctypes; looked up once, in the forkserver (`_preload`), not per job."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def confine(lim: SandboxLimits) -> None:
    """Resource limits for the current process (called in the child)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim.memory_bytes, lim.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_bytes, lim.file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.max_open_files, lim.max_open_files))
    # Background work: chat traffic and uploads on the same cores go first.
    os.nice(lim.nice)


def isolate_network(libc: Any) -> bool:
    """Enter an empty network namespace; if not permitted, disable sockets in this process."""
    if libc is not None and libc.unshare(_CLONE_NEWNET) == 0:
        return True
    log.warning("sandbox: unshare(CLONE_NEWNET) not permitted; sockets disabled instead")

    def _refuse(*_args: object, **_kwargs: object) -> socket.socket:
        raise PermissionError("network disabled in the sanitiser sandbox")

    socket.socket = _refuse  # type: ignore[assignment,misc]
    socket.create_connection = _refuse
    return False


def drop_privileges() -> None:
    """Become `nobody` when running as root (after the job has opened its files)."""
    if os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(_NOBODY)
    os.setuid(_NOBODY)
