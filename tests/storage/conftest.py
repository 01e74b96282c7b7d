"""Both blob stores under one contract.  ``store_under_test`` is parametrised: the local store
in a temporary directory, and the S3 store against a real S3-compatible server (moto's, run
once per session as a process of its own on a free port) with a fresh bucket per test.  Each
backend can list *everything* it holds, blobs and staging alike, so a test can show that a
failed upload left nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiobotocore.session import AioSession
from types_aiobotocore_s3 import S3Client

from storage.blobs import BlobStore, LocalBlobStore
from storage.s3 import S3BlobStore

MOTO_START_TIMEOUT_S = 30.0
S3_ACCESS_KEY = "kakehashi-test"
S3_SECRET_KEY = "kakehashi-test-secret"
S3_REGION = "ap-northeast-1"


class LocalUnderTest:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = LocalBlobStore(root)

    def location(self, key: str) -> str:
        return f"blobs/{key[:2]}/{key[2:4]}/{key}"

    async def everything(self) -> set[str]:
        """Every file under the store's directory: blobs and the temporary directory."""
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if not p.is_dir()}

    async def temp_files(self) -> set[str]:
        return {p.name for p in (self.root / "tmp").glob("*")}

    async def add_stale_staging(self) -> None:
        """What a writer that crashed leaves: a temporary file."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp" / "put-crashed.part").write_bytes(b"half a file")

    async def close(self) -> None:
        await self.store.close()


class S3UnderTest:
    name = "s3"

    def __init__(
        self,
        raw: S3Client,
        bucket: str,
        endpoint: str,
        session: AioSession,
        exit: AsyncExitStack,
    ) -> None:
        self.raw = raw
        self.bucket = bucket
        self._exit = exit
        self.store = S3BlobStore(
            bucket,
            "town/",
            endpoint_url=endpoint,
            region=S3_REGION,
            access_key_id=S3_ACCESS_KEY,
            secret_access_key=S3_SECRET_KEY,
            session=session,
        )

    @classmethod
    async def create(cls, endpoint: str, session: AioSession) -> S3UnderTest:
        """A fresh bucket, and a plain client apart from the store's to set up and inspect."""
        exit = AsyncExitStack()
        raw = await exit.enter_async_context(
            session.create_client(
                "s3",
                region_name=S3_REGION,
                endpoint_url=endpoint,
                aws_access_key_id=S3_ACCESS_KEY,
                aws_secret_access_key=S3_SECRET_KEY,
            )
        )
        bucket = f"kakehashi-{uuid.uuid4().hex[:12]}"
        await raw.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
        )
        return cls(raw, bucket, endpoint, session, exit)

    def location(self, key: str) -> str:
        return f"town/blobs/{key[:2]}/{key[2:4]}/{key}"

    async def everything(self) -> set[str]:
        """Every object in the bucket and every multipart upload still open."""
        found: set[str] = set()
        async for page in self.raw.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found.update(obj["Key"] for obj in page.get("Contents", []))
        uploads = await self.raw.list_multipart_uploads(Bucket=self.bucket)
        found.update(f"upload:{u['Key']}" for u in uploads.get("Uploads", []))
        return found

    async def temp_files(self) -> set[str]:
        return {name for name in await self.everything() if "tmp/" in name}

    async def add_stale_staging(self) -> None:
        key = "town/tmp/crashed"
        created = await self.raw.create_multipart_upload(Bucket=self.bucket, Key=key)
        # With a part, as the store's uploads always have: moto reports a fixed date from
        # 2010 as every upload's "Initiated", so the sweep goes by the last part's time.
        await self.raw.upload_part(
            Bucket=self.bucket, Key=key, UploadId=created["UploadId"], PartNumber=1, Body=b"x"
        )

    async def close(self) -> None:
        await self.store.close()
        for name in await self.everything():
            if not name.startswith("upload:"):
                await self.raw.delete_object(Bucket=self.bucket, Key=name)
        uploads = await self.raw.list_multipart_uploads(Bucket=self.bucket)
        for u in uploads.get("Uploads", []):
            await self.raw.abort_multipart_upload(
                Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"]
            )
        await self.raw.delete_bucket(Bucket=self.bucket)
        await self._exit.aclose()


StoreUnderTest = LocalUnderTest | S3UnderTest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server as a process of its own on a free port."""
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    port = _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + MOTO_START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def aio_session() -> AioSession:
    """One botocore session for every S3 client of the tests: its service models load once."""
    return AioSession()


@pytest.fixture(params=["local", "s3"])
async def under_test(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreUnderTest]:
    backend: StoreUnderTest
    if request.param == "local":
        backend = LocalUnderTest(tmp_path / "store")
    else:
        endpoint: str = request.getfixturevalue("s3_endpoint")
        session: AioSession = request.getfixturevalue("aio_session")
        backend = await S3UnderTest.create(endpoint, session)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def store(under_test: StoreUnderTest) -> BlobStore:
    return under_test.store
