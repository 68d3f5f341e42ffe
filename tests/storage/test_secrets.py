"""gsm:// references: the parser, and real gRPC round trips to a local fake Secret Manager."""

from __future__ import annotations

import time
from concurrent import futures

import pytest
from testkit import free_port

from mugpos import secrets
from mugpos.errors import ConfigError
from mugpos.secrets import parse_ref, resolve_secret

grpc = pytest.importorskip("grpc")
sm_types = pytest.importorskip("google.cloud.secretmanager_v1.types")

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
STORE = {
    "projects/p1/secrets/mongo-uri/versions/latest": b"mongodb://user:hunter2@db:27017",
    "projects/p1/secrets/mongo-uri/versions/3": b"old-value",
}


def test_parse_ref() -> None:
    r = parse_ref("gsm://projects/my-proj/secrets/api_key")
    assert (r.project, r.secret, r.version) == ("my-proj", "api_key", "latest")
    assert r.name == "projects/my-proj/secrets/api_key/versions/latest"
    assert parse_ref("gsm://projects/123/secrets/k/versions/7").name == "projects/123/secrets/k/versions/7"
    for bad in (
        "gsm://projects/p/secrets",
        "gsm://p/s",
        "gsm://projects/p/secrets/s/versions/",
        "gsm://projects/p/secrets/a b",
    ):
        with pytest.raises(ConfigError) as err:
            parse_ref(bad, setting="MUGPOS_X")
        assert "MUGPOS_X" in err.value.message and "gsm://projects/" in err.value.hint


class FakeSecretManager:
    """AccessSecretVersion over real gRPC, with the library's own protobuf types."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def access(self, request, context):
        self.calls.append(request.name)
        if request.name.startswith("projects/forbidden/"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "caller lacks secretAccessor")
        data = STORE.get(request.name)
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
        return sm_types.AccessSecretVersionResponse(
            name=request.name, payload=sm_types.SecretPayload(data=data)
        )


@pytest.fixture
def fake_gsm(monkeypatch: pytest.MonkeyPatch):
    fake = FakeSecretManager()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                fake.access,
                request_deserializer=sm_types.AccessSecretVersionRequest.deserialize,
                response_serializer=sm_types.AccessSecretVersionResponse.serialize,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("MUGPOS_GSM_ENDPOINT", f"127.0.0.1:{port}")
    secrets.set_client_factory(None)
    yield fake
    secrets.set_client_factory(None)
    server.stop(0)


def test_round_trip_cache_and_versions(fake_gsm: FakeSecretManager) -> None:
    ref = "gsm://projects/p1/secrets/mongo-uri"
    assert resolve_secret(ref) == "mongodb://user:hunter2@db:27017"
    assert resolve_secret(ref) == "mongodb://user:hunter2@db:27017"
    assert fake_gsm.calls == ["projects/p1/secrets/mongo-uri/versions/latest"]  # second from the cache
    assert resolve_secret(ref + "/versions/3") == "old-value"
    secrets.clear_cache()
    resolve_secret(ref)
    assert len(fake_gsm.calls) == 3


def test_ttl_expiry(fake_gsm: FakeSecretManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUGPOS_SECRET_TTL_S", "0")
    resolve_secret("gsm://projects/p1/secrets/mongo-uri")
    resolve_secret("gsm://projects/p1/secrets/mongo-uri")
    assert len(fake_gsm.calls) == 2


def test_failures_name_the_secret_and_setting_never_the_value(fake_gsm: FakeSecretManager) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_secret("gsm://projects/p1/secrets/missing", setting="MUGPOS_MONGODB_URI")
    msg = err.value.message
    assert "projects/p1/secrets/missing/versions/latest" in msg and "MUGPOS_MONGODB_URI" in msg
    assert "not found" in msg
    with pytest.raises(ConfigError) as err:
        resolve_secret("gsm://projects/forbidden/secrets/x", setting="MUGPOS_AUTH_TOKEN")
    assert "permission denied" in err.value.message and "secretAccessor" in err.value.hint
    # a failure is not cached: the next call asks again
    with pytest.raises(ConfigError):
        resolve_secret("gsm://projects/p1/secrets/missing")
    assert fake_gsm.calls.count("projects/p1/secrets/missing/versions/latest") == 2


def test_settings_resolve_gsm_references(
    fake_gsm: FakeSecretManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mugpos.settings import Settings

    monkeypatch.setenv("MUGPOS_MONGODB_URI", "gsm://projects/p1/secrets/mongo-uri")
    monkeypatch.setenv("MUGPOS_S3_BUCKET", "gsm://projects/p1/secrets/mongo-uri/versions/3")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.mongodb_uri is not None and s.mongodb_uri.get_secret_value().endswith("@db:27017")
    assert s.s3_bucket == "old-value"
    monkeypatch.setenv("MUGPOS_MONGODB_URI", "gsm://projects/p1/secrets/absent")
    with pytest.raises(ConfigError) as err:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "MUGPOS_MONGODB_URI" in err.value.message and "hunter2" not in str(err.value.to_dict())


def test_closed_port_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("MUGPOS_GSM_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("MUGPOS_GSM_TIMEOUT_S", "1")
    secrets.set_client_factory(None)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        resolve_secret("gsm://projects/p/secrets/s", setting="MUGPOS_RUNPOD_API_KEY")
    assert time.perf_counter() - t0 < 5
    assert "projects/p/secrets/s/versions/latest" in err.value.message
    assert "MUGPOS_RUNPOD_API_KEY" in err.value.message
    secrets.set_client_factory(None)


def test_missing_library_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_google(name, *args, **kwargs):
        if name.startswith("google.cloud"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_google)
    secrets.set_client_factory(None)
    with pytest.raises(ConfigError) as err:
        resolve_secret("gsm://projects/p/secrets/s")
    assert "google-cloud-secret-manager" in err.value.message
    monkeypatch.undo()
    secrets.set_client_factory(None)
