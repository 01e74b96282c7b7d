"""20 MiB uploads through the app versus nginx writing the same bytes to disk, in one run.

The app is a real ``kakehashi serve`` process (SQLite, local blob store, the in-process
sanitiser); each upload is ``POST /api/rooms/{id}/attachments`` with the file as the raw body,
so it is read, capped, hashed (SHA-256), written, fsynced and renamed, then recorded (row,
event, audit entry) and queued for the sanitiser.  nginx (Debian's, started here as an
unprivileged master on a free port) takes ``PUT`` with ``dav_methods``: it writes the body to
a temporary file and renames it into place (no fsync, no hash).  Payloads are incompressible
random bytes, which the sanitiser blocks after reading their first MiB (``unsupported_type``),
so its children cost little here; ``bench/sanitize.py`` measures sanitising.

Every batch sends the same payloads again (one per file of the batch), so from the second
batch on both servers replace what they stored before: the app renames over its blob of the
same bytes (same key), nginx over its file of the same name.  Replacing a 20 MiB file frees
its cached pages (about 4-5 ms here, for either).  Before every batch the kernel writes back
all dirty pages (``sync``): nginx leaves its 160 MiB of a batch in the page cache, and the
app's next batch, which fsyncs, would otherwise wait for them to reach the disk too.

For each concurrency (1, 4, 8 uploads at once) batches of the app and of nginx alternate;
each batch moves ``--mib-per-batch`` MiB.  Printed: MB/s (median, min-max over ``--runs``
batches), the ratio app / nginx, and the app's peak extra resident memory per concurrent
upload (peak RSS during a batch minus the baseline, divided by the concurrency; the peak
is the larger of a 2 ms sampler and the kernel's high-water mark reset before the batch; the
baseline is a fresh app process's size after a warm-up with small files, so memory kept from
an earlier batch counts).

    .venv/bin/python bench/upload.py [--runs 5] [--concurrency 1 4 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from argon2 import PasswordHasher

from chat import accounts, audit, licenses, passwords, rooms
from chat.app import build_services, close_services
from chat.auth import Principal
from chat.migrate import upgrade
from chat.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
FILE_BYTES = 20 * MIB
PASSWORD = "Bench-upload-2026"
TARGET_RATIO = 0.6
TARGET_EXTRA_MIB = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def cpu_s(pids: list[int], *, reaped: bool = False) -> float:
    """User + system CPU seconds used so far by these processes, and with ``reaped`` by the
    children they have waited for (the sanitiser's forkserver reaps its sandboxed jobs)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11 : 15 if reaped else 13])
    return total / ticks


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (nginx's master and workers; the app and its sanitiser)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in os.listdir(f"/proc/{p}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{p}/task/{task}/children") as f:
                todo.extend(int(c) for c in f.read().split())
    return out


def reset_hwm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler:
    """The peak RSS of a process while a batch runs (a thread reading /proc every 2 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid)[0])
            time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def prepare_app(data_dir: Path) -> None:
    """A database with one signed-up person holding the internet license, and a room."""
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    data_dir.mkdir(parents=True)
    services = await build_services(Settings(data_dir=data_dir))
    try:
        await upgrade(services.db)
        async with services.unit() as uow:
            org = await accounts.create_organisation(uow, "bench")
            await licenses.set_pool(uow, audit.SYSTEM, org.id, "internet", 10)
            user = await accounts.create_user(
                uow,
                org.id,
                accounts.UserInput(
                    login_id="bench", display_name="ベンチ", role="admin", password=PASSWORD
                ),
            )
            change = licenses.Change()
            change.set(user.id, "internet", True)
            await licenses.apply(uow, audit.SYSTEM, org.id, change)
        async with services.unit() as uow:
            await rooms.create_group(uow, Principal(user, 0, "internet"), "bench", [])
    finally:
        await close_services(services)


@contextlib.contextmanager
def app_server(data_dir: Path, port: int, log: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAKEHASHI_")}
    env.update(
        KAKEHASHI_DATA_DIR=str(data_dir),
        KAKEHASHI_LOG_LEVEL="warning",
        KAKEHASHI_SANITIZER_WORKERS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat", "serve", "--port", str(port), "--lgwan-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 21m;
    server {{
        listen 127.0.0.1:{port};
        location /upload/ {{
            root {dir}/www;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_server(workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("nginx is missing: apt-get install -y nginx-light")
    (workdir / "www" / "upload").mkdir(parents=True)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    command = [nginx, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    if os.geteuid() == 0:  # an unprivileged master: run as nobody, owning its directory
        workdir.parent.chmod(0o755)
        shutil.chown(workdir, "nobody", "nogroup")
        for path in workdir.rglob("*"):
            shutil.chown(path, "nobody", "nogroup")
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@dataclass
class Payload:
    """One file to send: its bytes (for httpx) and a copy on disk (for curl)."""

    data: bytes
    path: Path


CLIENT = {"name": "curl"}  # set from --client


async def batch(
    client: httpx.AsyncClient,
    requests: list[tuple[str, str, dict[str, str]]],
    payloads: list[Payload],
    concurrency: int,
) -> float:
    """Send every payload, ``concurrency`` at a time; seconds taken.  With curl (the default)
    the client is a C program of its own, ``concurrency`` processes each sending its share
    over one connection, so the client takes little of the CPU the servers share."""
    if CLIENT["name"] == "curl":
        return await _curl_batch(requests, payloads, concurrency)
    todo = list(range(len(payloads)))

    async def stream() -> None:
        while todo:
            i = todo.pop()
            method, url, headers = requests[i]
            r = await client.request(method, url, content=payloads[i].data, headers=headers)
            if r.status_code not in (200, 201, 204):
                raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(stream() for _ in range(concurrency)))
    return time.perf_counter() - start


async def _curl_batch(
    requests: list[tuple[str, str, dict[str, str]]], payloads: list[Payload], concurrency: int
) -> float:
    commands = []
    for k in range(concurrency):
        command = ["curl", "-sS"]
        for n, i in enumerate(range(k, len(payloads), concurrency)):
            method, url, headers = requests[i]
            if n:
                command.append("--next")
            command += ["-o", "/dev/null", "-w", "%{http_code}\\n", "-H", "Expect:"]
            command += ["-T", str(payloads[i].path), "-X", method, url]
            for name, value in headers.items():
                command += ["-H", f"{name}: {value}"]
        commands.append(command)
    start = time.perf_counter()
    procs = [
        await asyncio.create_subprocess_exec(*c, stdout=asyncio.subprocess.PIPE) for c in commands
    ]
    outputs = [(await p.communicate())[0].decode() for p in procs]
    seconds = time.perf_counter() - start
    codes = "".join(outputs).split()
    if len(codes) != len(payloads) or any(c not in ("200", "201", "204") for c in codes):
        raise RuntimeError(f"curl: unexpected answers {codes}")
    return seconds


async def settle() -> None:
    """Before a batch: the kernel writes back every dirty page (``sync``), so that no batch
    pays for writing back what the one before it left in the page cache (nginx leaves its
    files dirty; the app has fsynced its own)."""
    await asyncio.to_thread(os.sync)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--mib-per-batch", type=int, default=160)
    parser.add_argument(
        "--client",
        choices=["curl", "httpx"],
        default="curl" if shutil.which("curl") else "httpx",
        help="curl processes (default) or httpx in this process",
    )
    args = parser.parse_args()
    CLIENT["name"] = args.client
    files_per_batch = max(1, args.mib_per_batch * MIB // FILE_BYTES)
    base = os.urandom(FILE_BYTES)

    with tempfile.TemporaryDirectory(prefix="kk-bench-upload-") as tmp:
        data_dir, nginx_dir = Path(tmp) / "app", Path(tmp) / "nginx"
        nginx_dir.mkdir()
        (Path(tmp) / "payloads").mkdir()
        payloads = []
        for i in range(files_per_batch):
            data = i.to_bytes(16, "big") + base[16:]
            path = Path(tmp) / "payloads" / f"{i}.bin"
            path.write_bytes(data)
            payloads.append(Payload(data, path))
        await prepare_app(data_dir)
        nginx_port = free_port()
        nginx_url = f"http://127.0.0.1:{nginx_port}"
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        with nginx_server(nginx_dir, nginx_port) as nginx:
            await wait_http(nginx_url + "/")
            no_headers: dict[str, str] = {}
            nginx_requests = [
                ("PUT", f"{nginx_url}/upload/bench-{i}.bin", no_headers)
                for i in range(files_per_batch)
            ]
            print(
                f"20 MiB uploads, {files_per_batch} per batch, {args.runs} batches each, "
                f"client {args.client}; "
                f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
            )
            print(
                "conc |  app MB/s (min-max)   | nginx MB/s (min-max)  | ratio (min-max) "
                "| app extra RSS MiB / upload: median (max)"
            )
            verdicts = []
            cpu_lines: list[str] = []
            for conc in args.concurrency:
                # A fresh app process per concurrency: its idle size after a warm-up with
                # small files is the baseline, so memory kept from an earlier batch is counted.
                async with httpx.AsyncClient(timeout=120, limits=limits) as client:
                    result = await measure_level(
                        client,
                        Path(tmp),
                        data_dir,
                        (nginx.pid, nginx_requests),
                        payloads,
                        conc,
                        args.runs,
                    )
                app_rates, nginx_rates, ratios, extras, cpu = result
                ratio, extra = statistics.median(ratios), statistics.median(extras)
                print(
                    f"{conc:4d} | {summary(app_rates)} | {summary(nginx_rates)} | "
                    f"{ratio:5.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
                    f"{extra:5.2f} ({max(extras):.2f})"
                )
                cpu_lines.append(
                    f"{conc:4d} | app {cpu[0]:5.1f} ms (of which the sanitiser's processes "
                    f"{cpu[1]:4.1f}) | nginx {cpu[2]:5.1f} ms"
                )
                verdicts.append((conc, ratio, max(extras)))
            print("CPU time per 20 MiB upload (median over batches; load-independent):")
            print("\n".join(cpu_lines))
            for conc, ratio, extra in verdicts:
                ok_ratio = "PASS" if ratio >= TARGET_RATIO else "FAIL"
                ok_mem = "PASS" if extra <= TARGET_EXTRA_MIB else "FAIL"
                print(
                    f"{ok_ratio} throughput x{conc}: {ratio:.2f} x nginx (target >= {TARGET_RATIO})"
                    f"   {ok_mem} memory x{conc}: {extra:.2f} MiB per upload at most "
                    f"(target <= {TARGET_EXTRA_MIB})"
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")


async def measure_level(
    client: httpx.AsyncClient,
    tmp: Path,
    data_dir: Path,
    nginx: tuple[int, list[tuple[str, str, dict[str, str]]]],
    payloads: list[Payload],
    conc: int,
    runs: int,
) -> tuple[list[float], list[float], list[float], list[float], tuple[float, float, float]]:
    nginx_pid, nginx_requests = nginx
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    with open(tmp / f"app-{conc}.log", "wb") as log, app_server(data_dir, app_port, log) as app:
        await wait_http(app_url + "/healthz")
        r = await client.post(
            app_url + "/api/auth/login", json={"login_id": "bench", "password": PASSWORD}
        )
        if r.status_code != 200:
            log.flush()
            sys.exit(f"sign-in: {r.status_code}\n{(tmp / f'app-{conc}.log').read_text()}")
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        room_id = (await client.get(app_url + "/api/rooms", headers=auth)).json()["rooms"][0]["id"]
        app_requests = [
            (
                "POST",
                f"{app_url}/api/rooms/{room_id}/attachments",
                {**auth, "X-Filename": f"bench-{i}.bin", "Content-Type": "text/x-bench"},
            )
            for i in range(len(payloads))
        ]
        # Warm-up with small files (code paths, connections, the sanitiser's forkserver),
        # then nginx and the page cache with the real ones.
        small = []
        for i in range(len(payloads)):
            data = os.urandom(64 * 1024)
            (tmp / "payloads" / f"small-{i}.bin").write_bytes(data)
            small.append(Payload(data, tmp / "payloads" / f"small-{i}.bin"))
        await batch(client, app_requests, small, conc)
        await batch(client, nginx_requests, payloads, conc)
        await asyncio.sleep(1.0)
        baseline = rss_kib(app.pid)[0]
        app_rates, nginx_rates, ratios, extras = [], [], [], []
        app_cpu, helper_cpu, nginx_cpu = [], [], []
        nginx_pids = process_tree(nginx_pid)
        for _ in range(runs):
            helpers = process_tree(app.pid)[1:]  # the sanitiser's forkserver (and children)
            hwm_ok = reset_hwm(app.pid)
            await settle()
            cpu0, helpers0 = cpu_s([app.pid]), cpu_s(helpers, reaped=True)
            with Sampler(app.pid) as sampler:
                seconds = await batch(client, app_requests, payloads, conc)
            peak = max(sampler.peak, rss_kib(app.pid)[1] if hwm_ok else 0)
            app_rate = len(payloads) * FILE_BYTES / seconds / 1e6
            await asyncio.sleep(0.5)  # let the sanitiser finish the batch's jobs
            helpers_used = cpu_s(helpers, reaped=True) - helpers0
            app_cpu.append((cpu_s([app.pid]) - cpu0 + helpers_used) * 1000 / len(payloads))
            helper_cpu.append(helpers_used * 1000 / len(payloads))
            await settle()
            cpu0 = cpu_s(nginx_pids)
            seconds = await batch(client, nginx_requests, payloads, conc)
            nginx_cpu.append((cpu_s(nginx_pids) - cpu0) * 1000 / len(payloads))
            nginx_rate = len(payloads) * FILE_BYTES / seconds / 1e6
            app_rates.append(app_rate)
            nginx_rates.append(nginx_rate)
            ratios.append(app_rate / nginx_rate)
            extras.append(max(peak - baseline, 0) / 1024 / conc)
            await asyncio.sleep(0.5)
    cpu = (
        statistics.median(app_cpu),
        statistics.median(helper_cpu),
        statistics.median(nginx_cpu),
    )
    return app_rates, nginx_rates, ratios, extras, cpu


if __name__ == "__main__":
    asyncio.run(main())
