"""Blob stores: the local folder, and S3 against a moto server over real HTTP."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from testkit import free_port

from mugpos.errors import BackendError, ConfigError, MugposError, NotFound
from mugpos.stores.blobs import BlobStore, LocalBlobStore, S3BlobStore, check_key, open_blob_store

BAD_KEYS = [
    "../x",
    "/etc/passwd",
    "a/../b",
    ".meta/a.json",
    "a//b",
    "a\\b",
    "",
    "a/",
    ".hidden",
    "a b",
    "x" * 600,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(MugposError) as err:
        check_key(key)
    assert err.value.code == "bad_blob_key"


@pytest.mark.anyio
async def test_local_store_round_trip(tmp_path: Path, make_settings) -> None:
    store = await open_blob_store(make_settings())
    assert isinstance(store, LocalBlobStore) and isinstance(store, BlobStore)
    assert await store.put("annotated/ab12.webp", b"RIFF....WEBP", "image/webp") == "annotated/ab12.webp"
    assert await store.get("annotated/ab12.webp") == (b"RIFF....WEBP", "image/webp")
    assert await store.exists("annotated/ab12.webp")
    assert not await store.exists("annotated/nope.webp")
    with pytest.raises(NotFound):
        await store.get("annotated/nope.webp")
    with pytest.raises(NotFound):
        await store.get("annotated")  # a folder is not a blob
    await store.put("annotated/ab12.webp", b"v2", "image/png")  # overwrite in place
    assert await store.get("annotated/ab12.webp") == (b"v2", "image/png")
    for key in BAD_KEYS:
        with pytest.raises(MugposError):
            await store.put(key, b"x", "text/plain")
    root = make_settings().data_dir / "blobs"
    assert sorted(p.name for p in (root / "annotated").iterdir()) == ["ab12.webp"]  # no temp files left
    assert store.status().details["puts"] == 2


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch):
    server_mod = pytest.importorskip("moto.server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its buckets in process-wide state that other tests' servers share: start empty.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


@pytest.mark.anyio
async def test_s3_store_against_moto(moto_endpoint: str, make_settings) -> None:
    settings = make_settings(
        blob_store="s3",
        s3_endpoint_url=moto_endpoint,
        s3_bucket="mugpos-test",
        s3_region="eu-west-1",  # moto is AWS: "auto" (R2's region) is not a region there
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    # The bucket does not exist yet: opening the store creates it.
    store = await open_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    assert await store.put("thumbs/a1.jpg", b"\xff\xd8jpeg", "image/jpeg") == "thumbs/a1.jpg"
    assert await store.get("thumbs/a1.jpg") == (b"\xff\xd8jpeg", "image/jpeg")
    assert await store.exists("thumbs/a1.jpg") and not await store.exists("thumbs/none.jpg")
    with pytest.raises(NotFound):
        await store.get("thumbs/none.jpg")
    with pytest.raises(MugposError):
        await store.put("../escape", b"x", "text/plain")
    st = store.status()
    assert st.backend == "s3" and st.details["bucket"] == "mugpos-test" and st.details["puts"] == 1 and st.ok
    await store.aclose()

    # Another worker (new store, bucket already there) sees the same object; checked with plain boto3.
    other = await open_blob_store(settings)
    assert (await other.get("thumbs/a1.jpg"))[0] == b"\xff\xd8jpeg"
    await other.aclose()
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["mugpos-test"]
    assert s3.get_object(Bucket="mugpos-test", Key="thumbs/a1.jpg")["ContentType"] == "image/jpeg"


@pytest.mark.anyio
async def test_s3_unreachable_is_a_clear_backend_error() -> None:
    port = free_port()
    store = S3BlobStore(f"http://127.0.0.1:{port}", "mugpos-x", "auto", "k", "s", timeout_s=0.5)
    t0 = time.perf_counter()
    with pytest.raises(BackendError) as err:
        await store.put("a.png", b"x", "image/png")
    assert time.perf_counter() - t0 < 10
    assert (
        "mugpos-x" in err.value.message
        and "s" not in err.value.message.split("failed")[0].split("bucket")[0][:0]
    )
    assert store.status().details["errors"] == 1 and not store.status().ok
    await store.aclose()


def test_bucket_name_length_is_checked() -> None:
    with pytest.raises(ConfigError):
        S3BlobStore("http://127.0.0.1:1", "ab")
