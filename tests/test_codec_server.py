"""The codec server: Temporal's JSON payload format, bearer token, CORS limited to the UI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payloads

from sagaworks.client.codec import EncryptionCodec, _associated_data
from sagaworks.client.codec_server import create_app
from sagaworks.client.devserver import dev_server_command
from tests.encryption import NEW_KEY, NEW_KEY_ID, OLD_KEY, TEST_ENV, TEST_KEYS, TOKEN
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
UI = "http://127.0.0.1:8233"
ORDER_JSON = b'{"order_id": "42", "customer_email": "ada@example.com"}'
PLAIN = {
    "payloads": [
        {
            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(ORDER_JSON).decode(),
        }
    ]
}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EncryptionCodec(TEST_KEYS), token=TOKEN, ui_origin=UI)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as client:
        yield client


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_encode_then_decode_in_temporals_json_format(http: httpx.AsyncClient) -> None:
    encoded = await http.post("/encode", json=PLAIN, headers=_auth())
    assert encoded.status_code == 200, encoded.text
    [payload] = json_format.Parse(encoded.content, Payloads()).payloads
    assert payload.metadata["encoding"] == b"binary/encrypted"
    assert payload.metadata["encryption-key-id"] == NEW_KEY_ID.encode()
    assert b"ada@example.com" not in payload.data
    # The SDK's codec, given the same keys, reads what the server encoded, and vice versa.
    assert (await EncryptionCodec(TEST_KEYS).decode([payload]))[0].data == ORDER_JSON
    decoded = await http.post("/decode", content=encoded.content, headers=_auth())
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == PLAIN


async def test_the_ui_form_carries_the_token_in_the_path(http: httpx.AsyncClient) -> None:
    encoded = await http.post(f"/{TOKEN}/encode", json=PLAIN)
    decoded = await http.post(f"/{TOKEN}/decode", content=encoded.content, headers={"X-Namespace": "default"})
    assert decoded.status_code == 200 and decoded.json() == PLAIN


@pytest.mark.parametrize("route", ["/encode", "/decode"])
@pytest.mark.parametrize(
    "headers",
    [{}, _auth("wrong-token-0123456789abcdefghij"), {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}],
    ids=["no token", "wrong token", "not bearer", "empty bearer"],
)
async def test_401_without_the_token(http: httpx.AsyncClient, route: str, headers: dict[str, str]) -> None:
    refused = await http.post(route, json=PLAIN, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "ada@example.com" not in refused.text


async def test_401_with_a_wrong_token_in_the_path(http: httpx.AsyncClient) -> None:
    assert (await http.post("/wrong-token-0123456789abcdefghij/decode", json=PLAIN)).status_code == 401


async def test_cors_preflight_only_for_the_ui_origin(http: httpx.AsyncClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        }

    allowed = await http.options(f"/{TOKEN}/decode", headers=preflight(UI))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert "POST" in allowed.headers["access-control-allow-methods"]
    refused = await http.options(f"/{TOKEN}/decode", headers=preflight("http://evil.example"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_a_response_to_another_origin_is_not_readable_by_its_page(http: httpx.AsyncClient) -> None:
    ours = await http.post("/decode", json=PLAIN, headers={**_auth(), "Origin": UI})
    theirs = await http.post("/decode", json=PLAIN, headers={**_auth(), "Origin": "http://evil.example"})
    assert ours.headers["access-control-allow-origin"] == UI
    assert "access-control-allow-origin" not in theirs.headers  # the browser withholds it


async def test_bad_bodies_and_unknown_keys_are_400_naming_the_problem(http: httpx.AsyncClient) -> None:
    assert (await http.post("/decode", content=b"not json", headers=_auth())).status_code == 400
    # A payload under a key this server does not hold: the error names the key id.
    [foreign] = await EncryptionCodec({"retired-2019": OLD_KEY}).encode(
        json_format.Parse(json.dumps(PLAIN), Payloads()).payloads
    )
    body = json_format.MessageToJson(Payloads(payloads=[foreign]))
    unknown = await http.post("/decode", content=body, headers=_auth())
    assert unknown.status_code == 400 and "'retired-2019'" in unknown.json()["detail"]


def _encrypted(data: bytes, key_id: str = NEW_KEY_ID, compression: bytes = b"") -> dict[str, Any]:
    """Temporal's JSON form of one payload marked encrypted under ``key_id``, holding ``data``."""
    metadata = {"encoding": b"binary/encrypted", "encryption-key-id": key_id.encode()}
    if compression:
        metadata["encryption-compression"] = compression
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in metadata.items()},
        "data": base64.b64encode(data).decode(),
    }


@pytest.mark.parametrize("size", [0, 1, 7, 8, 11, 12, 27])
async def test_encrypted_data_too_short_for_nonce_and_tag_is_400(http: httpx.AsyncClient, size: int) -> None:
    refused = await http.post("/decode", json={"payloads": [_encrypted(b"\x01" * size)]}, headers=_auth())
    assert refused.status_code == 400
    assert f"holds {size} bytes of data" in refused.json()["detail"] and "at least 28" in refused.json()["detail"]


def _sealed(plaintext: bytes, compression: bytes) -> bytes:
    """``plaintext`` authentically encrypted under the newest test key, whatever it holds."""
    nonce = b"\x00" * 12
    return nonce + AESGCM(NEW_KEY).encrypt(nonce, plaintext, _associated_data(NEW_KEY_ID, compression))


_bytes = st.binary(max_size=48)
_text = st.text(max_size=16)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_key_id = st.sampled_from([NEW_KEY_ID, "test-2025", "retired-2019", "", "\udcff"]) | _text
_compression = st.sampled_from([b"", b"zlib", b"gzip"])
_payload = st.one_of(
    st.builds(_encrypted, _bytes, _key_id, _compression),
    # Authentic ciphertext of anything (not a serialized payload, bad zlib): only a key holder can send it.
    st.builds(
        lambda data, compression: _encrypted(_sealed(data, compression), NEW_KEY_ID, compression), _bytes, _compression
    ),
    st.builds(lambda data, cut: _encrypted(_sealed(data, b"")[:cut]), _bytes, st.integers(0, 40)),
    st.fixed_dictionaries({"metadata": st.dictionaries(_text, _text | _json, max_size=3), "data": _text | _json}),
    _json,
)
_body = st.one_of(
    st.lists(_payload, max_size=3).map(lambda payloads: json.dumps({"payloads": payloads}).encode()),
    _json.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
    st.just(b"[" * 5000 + b"]" * 5000),
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(["/encode", "/decode", f"/{TOKEN}/decode"]), body=_body)
def test_no_body_makes_the_codec_server_fail(route: str, body: bytes) -> None:
    app = create_app(EncryptionCodec(TEST_KEYS), token=TOKEN, ui_origin=UI)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post(route, content=body, headers=_auth())
    assert answer.status_code in (200, 400), (answer.status_code, answer.text)
    if answer.status_code == 400:
        assert answer.json()["detail"]


async def test_bodies_over_the_cap_are_413_before_they_are_read() -> None:
    app = create_app(EncryptionCodec(TEST_KEYS), token=TOKEN, ui_origin=UI, max_body_bytes=4096)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
        assert (await http.post("/decode", json=PLAIN, headers=_auth())).status_code == 200  # under the cap
        big = {"payloads": PLAIN["payloads"] * 100}
        for route in ("/decode", "/encode", f"/{TOKEN}/decode"):
            refused = await http.post(route, json=big, headers={**_auth(), "Origin": UI})
            assert refused.status_code == 413, route
            assert refused.json()["error"]["type"] == "PayloadTooLarge"
            assert refused.headers["access-control-allow-origin"] == UI  # the UI can say why

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(3):
                yield b" " * 2048

        streamed = await http.post("/decode", content=chunks(), headers=_auth())
        assert streamed.status_code == 413


def test_weak_tokens_are_refused() -> None:
    for weak in ("", "short", "has spaces in it but is long enough", "a/b" * 10):
        with pytest.raises(ValueError, match="token"):
            create_app(EncryptionCodec(TEST_KEYS), token=weak, ui_origin=UI)


def test_serve_reads_keys_token_and_origin_from_the_environment() -> None:
    port = free_port()
    environ = {**os.environ, **TEST_ENV, "SAGAWORKS_CODEC_TOKEN": TOKEN, "SAGAWORKS_CODEC_UI_ORIGIN": UI}
    server = subprocess.Popen(
        [sys.executable, "-c", f"from client.codec_server import serve; serve(port={port})"],
        env=environ,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                encoded = httpx.post(f"http://127.0.0.1:{port}/encode", json=PLAIN, headers=_auth())
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]  # started with stdout=PIPE
                assert time.monotonic() < deadline, "codec server did not start"
                time.sleep(0.1)
        assert encoded.status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/decode", content=encoded.content).status_code == 401
        decoded = httpx.post(f"http://127.0.0.1:{port}/{TOKEN}/decode", content=encoded.content, headers={"Origin": UI})
        assert decoded.json() == PLAIN and decoded.headers["access-control-allow-origin"] == UI
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert TOKEN not in output  # no access log carrying the token


def test_serve_refuses_to_start_without_keys_or_token() -> None:
    for environ, message in [({}, "needs the encryption keys"), (TEST_ENV, "needs a token")]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SAGAWORKS_")}
        failed = subprocess.run(
            [sys.executable, "-c", "from client.codec_server import serve; serve(port=1)"],
            env={**clean, **environ},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert failed.returncode != 0 and message in failed.stderr


def test_compose_runs_the_codec_server_and_encrypts() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    codec = services["codec-server"]
    assert codec["command"][:2] == ["saga", "codec-server"]
    assert codec["environment"]["SAGAWORKS_CODEC_UI_ORIGIN"] == "http://localhost:8233"
    assert codec["ports"] == ["127.0.0.1:8081:8081"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].startswith("http://localhost:8081/")
    for name in ("worker", "codec-server"):
        environment = services[name]["environment"]
        assert environment["SAGAWORKS_REQUIRE_ENCRYPTION"] == "1", name
        assert environment["SAGAWORKS_ENCRYPTION_KEYS"] == "${SAGAWORKS_ENCRYPTION_KEYS:-}", name


def test_the_dev_server_command_can_point_its_ui_at_a_codec_server(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:8081/{TOKEN}"
    command = dev_server_command(db_file=tmp_path / "t.db", ui_codec_endpoint=endpoint)
    assert command[command.index("--ui-codec-endpoint") + 1] == endpoint
    assert "--ui-codec-endpoint" not in dev_server_command(db_file=tmp_path / "t.db")  # the default: none
    headless = dev_server_command(db_file=tmp_path / "t.db", headless=True, ui_codec_endpoint=endpoint)
    assert "--ui-codec-endpoint" not in headless  # no UI, nothing to point
