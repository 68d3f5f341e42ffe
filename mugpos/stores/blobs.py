"""Where annotated images and thumbnails live (originals only with `store_originals`).

A local folder by default; Cloudflare R2 or any S3 endpoint through aioboto3 when configured. Keys
are plain relative names (`annotated/ab12.webp`): letters, digits, `.`, `_`, `-`, and `/` between
segments, so a key can never climb out of its folder or bucket prefix. `open_blob_store` checks S3
when it opens and, only if `s3_fallback` is on, uses the local folder (degraded) when S3 is away: the
fallback style all stores share (`mugpos.stores.health.open_with_fallback`). It is off by default,
since pictures kept on a worker's disk are lost when the worker goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mugpos.errors import BackendError, ConfigError, MugposError, NotFound
from mugpos.stores.health import ComponentHealth, open_with_fallback

if TYPE_CHECKING:
    from mugpos.settings import Settings

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
MAX_KEY_CHARS = 512
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def check_key(key: str) -> str:
    """The key itself if safe, else a `MugposError`: no `..`, no leading `/` or `.`, no odd characters."""
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not _KEY.fullmatch(key):
        raise MugposError(
            f"invalid blob key {key[:80]!r}" if isinstance(key, str) else "invalid blob key",
            code="bad_blob_key",
            hint="keys are relative names of letters, digits, '.', '_', '-' and '/' (e.g. annotated/ab12.webp)",
        )
    return key


@runtime_checkable
class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str: ...

    async def get(self, key: str) -> tuple[bytes, str]: ...

    async def exists(self, key: str) -> bool: ...

    def status(self) -> ComponentHealth: ...

    async def aclose(self) -> None: ...


class LocalBlobStore:
    """Files under `root`; content types in a sidecar tree `root/.meta/` no key can reach."""

    def __init__(self, root: Path | str, *, degraded_reason: str | None = None) -> None:
        self.root = Path(root).expanduser()
        self.degraded_reason = degraded_reason
        self.puts = 0
        self.gets = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        check_key(key)
        return self.root / key, self.root / ".meta" / f"{key}.json"

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        path, meta = self._paths(key)

        def run() -> None:
            try:
                self._atomic_write(
                    meta, json.dumps({"content_type": content_type, "size": len(data)}).encode()
                )
                self._atomic_write(path, bytes(data))
            except OSError as exc:
                raise ConfigError(
                    f"cannot write blob {key!r} under {self.root}: {exc.strerror or exc}",
                    hint="set MUGPOS_DATA_DIR to a writable folder",
                ) from exc

        await asyncio.to_thread(run)
        self.puts += 1
        self._failing = False
        return key

    async def get(self, key: str) -> tuple[bytes, str]:
        path, meta = self._paths(key)

        def run() -> tuple[bytes, str]:
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise NotFound(f"no blob {key!r}", hint="the image may have been removed") from None
            try:
                ctype = json.loads(meta.read_bytes()).get("content_type") or DEFAULT_CONTENT_TYPE
            except (OSError, ValueError):
                ctype = DEFAULT_CONTENT_TYPE
            return data, ctype

        out = await asyncio.to_thread(run)
        self.gets += 1
        return out

    async def exists(self, key: str) -> bool:
        path, _ = self._paths(key)
        return await asyncio.to_thread(path.is_file)

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="blobs",
            backend="local",
            configured="s3" if self.degraded_reason else "local",
            degraded=self.degraded_reason is not None,
            reason=self.degraded_reason,
            details={"root": str(self.root), "puts": self.puts, "gets": self.gets},
        )

    async def aclose(self) -> None:
        return None


class S3BlobStore:
    """Any S3 endpoint (Cloudflare R2, MinIO, AWS) through one aioboto3 session and a reused client."""

    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        region: str = "auto",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        if not 3 <= len(bucket) <= 63:
            raise ConfigError(
                f"S3 bucket name {bucket!r} must have 3 to 63 characters", hint="set MUGPOS_S3_BUCKET"
            )
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self._key_id = access_key_id
        self._secret = secret_access_key
        self.timeout_s = timeout_s
        self._session: Any = None
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._lock: asyncio.Lock | None = None
        self.puts = 0
        self.gets = 0
        self.errors = 0
        self.last_error: str | None = None
        self._failing = False  # the last call failed; cleared by the next that succeeds

    async def open(self) -> S3BlobStore:
        """Reach the endpoint now (creating the bucket if missing) instead of on the first put."""
        try:
            await self._c()
        except MugposError:
            raise
        except Exception as exc:
            await self._reset()
            raise self._fail(exc, "open the bucket") from exc
        return self

    async def _c(self) -> Any:
        """The client, created once per event loop, with the bucket made if it is missing."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop and self._ready:
            return self._client
        if self._lock is None or self._loop is not loop:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is not None and self._loop is loop and self._ready:
                return self._client
            import aioboto3
            from aiobotocore.config import AioConfig

            if self._session is None:
                self._session = aioboto3.Session()
            self._stack = contextlib.AsyncExitStack()
            self._client = await self._stack.enter_async_context(
                self._session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    aws_access_key_id=self._key_id,
                    aws_secret_access_key=self._secret,
                    config=AioConfig(
                        connect_timeout=self.timeout_s,
                        read_timeout=self.timeout_s,
                        retries={"max_attempts": 2, "mode": "standard"},
                    ),
                )
            )
            self._loop = loop
            await self._ensure_bucket()
            self._ready = True
            return self._client

    async def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region not in {"auto", "us-east-1", ""}:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou"}:
                raise

    def _fail(self, exc: Exception, action: str) -> BackendError:
        self.errors += 1
        self._failing = True
        self.last_error = f"{action}: {type(exc).__name__}: {exc}"[:300]
        return BackendError(
            f"S3 blob store ({self.endpoint_url or 'AWS'}, bucket {self.bucket}) failed to {action}: "
            f"{type(exc).__name__}",
            hint="check MUGPOS_S3_ENDPOINT_URL, MUGPOS_S3_BUCKET and the access keys",
        )

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        check_key(key)
        try:
            client = await self._c()
            await client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), ContentType=content_type)
        except MugposError:
            raise
        except Exception as exc:
            await self._reset()
            raise self._fail(exc, f"store {key!r}") from exc
        self.puts += 1
        self._failing = False
        return key

    async def get(self, key: str) -> tuple[bytes, str]:
        check_key(key)
        from botocore.exceptions import ClientError

        try:
            client = await self._c()
            resp = await client.get_object(Bucket=self.bucket, Key=key)
            async with resp["Body"] as body:
                data = await body.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise NotFound(f"no blob {key!r}", hint="the image may have been removed") from None
            raise self._fail(exc, f"read {key!r}") from exc
        except MugposError:
            raise
        except Exception as exc:
            await self._reset()
            raise self._fail(exc, f"read {key!r}") from exc
        self.gets += 1
        self._failing = False
        return data, resp.get("ContentType") or DEFAULT_CONTENT_TYPE

    async def exists(self, key: str) -> bool:
        check_key(key)
        from botocore.exceptions import ClientError

        try:
            client = await self._c()
            await client.head_object(Bucket=self.bucket, Key=key)
            self._failing = False
            return True
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._fail(exc, f"check {key!r}") from exc
        except Exception as exc:
            await self._reset()
            raise self._fail(exc, f"check {key!r}") from exc

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="blobs",
            backend="s3",
            ok=not self._failing,
            reason=self.last_error if self._failing else None,
            details={
                "endpoint": self.endpoint_url or "aws",
                "bucket": self.bucket,
                "region": self.region,
                "puts": self.puts,
                "gets": self.gets,
                "errors": self.errors,
                "last_error": self.last_error,
            },
        )

    async def _reset(self) -> None:
        stack, self._stack, self._client, self._ready = self._stack, None, None, False
        if stack is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def aclose(self) -> None:
        await self._reset()


async def open_blob_store(settings: Settings) -> BlobStore:
    """The configured store: S3/R2 when `blob_store=s3` (checked now), else a folder in the data directory."""
    local = settings.data_dir / "blobs"
    if settings.blob_store != "s3":
        return LocalBlobStore(local)

    async def s3() -> BlobStore:
        store = S3BlobStore(
            settings.s3_endpoint_url,
            settings.s3_bucket,
            settings.s3_region,
            settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
            settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None,
        )
        return await store.open()

    async def fallback(reason: str) -> BlobStore:
        return LocalBlobStore(local, degraded_reason=reason)

    return await open_with_fallback(
        s3, fallback, allowed=settings.s3_fallback, fallback_name=f"the local folder {local}"
    )
