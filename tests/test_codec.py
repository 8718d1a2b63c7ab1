"""The payload codec: AES-256-GCM round trips, key rotation, tampering, configuration."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from sagaworks.client.codec import (
    COMPRESSION_METADATA,
    ENCODING,
    KEY_ID_METADATA,
    REFUSED_ENCODING,
    EncryptionCodec,
    EncryptionConfigError,
    TamperedPayload,
    UnknownEncryptionKey,
    codec_from_env,
    new_key_entry,
    parse_keys,
)
from sagaworks.client.connection import data_converter
from sagaworks.contracts.orders import OrderInput
from tests.encryption import NEW_KEY, NEW_KEY_ID, OLD_KEY, OLD_KEY_ID, TEST_ENV, TEST_KEYS
from tests.orders import make_order


def _plain(text: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text)


async def test_an_order_round_trips_through_the_encrypting_converter() -> None:
    converter = data_converter(TEST_ENV)
    order = make_order()
    [encoded] = await converter.encode([order])
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata[KEY_ID_METADATA] == NEW_KEY_ID.encode()
    assert b"ada@example.com" not in encoded.data and b"WIDGET-1" not in encoded.data
    [decoded] = await converter.decode([encoded], [OrderInput])
    assert decoded == order


async def test_each_payload_gets_its_own_nonce() -> None:
    codec = EncryptionCodec(TEST_KEYS)
    first, second = await codec.encode([_plain(b'"same"'), _plain(b'"same"')])
    assert first.data != second.data


def test_encryption_is_off_without_keys() -> None:
    assert codec_from_env({}) is None
    plain = data_converter({})
    assert (
        plain.payload_codec is None and plain.payload_converter_class is pydantic_data_converter.payload_converter_class
    )


async def test_compression_before_encryption_shrinks_and_round_trips() -> None:
    big = _plain(b'{"text": "' + b"compensate the saga " * 500 + b'"}')
    [compressed] = await EncryptionCodec(TEST_KEYS, compress=True).encode([big])
    [uncompressed] = await EncryptionCodec(TEST_KEYS).encode([big])
    assert compressed.metadata[COMPRESSION_METADATA] == b"zlib"
    assert COMPRESSION_METADATA not in uncompressed.metadata
    assert len(compressed.data) < len(uncompressed.data) / 10
    # Any codec with the key decodes it: compression is recorded in the payload.
    assert await EncryptionCodec(TEST_KEYS).decode([compressed]) == [big]


async def test_compression_is_skipped_when_it_does_not_help() -> None:
    [tiny] = await EncryptionCodec(TEST_KEYS, compress=True).encode([_plain(b"1")])
    assert COMPRESSION_METADATA not in tiny.metadata


async def test_rotation_new_payloads_use_the_newest_key_and_old_ones_still_decode() -> None:
    before = EncryptionCodec({OLD_KEY_ID: OLD_KEY})
    after = EncryptionCodec({OLD_KEY_ID: OLD_KEY, NEW_KEY_ID: NEW_KEY})
    [old] = await before.encode([_plain(b'"written last year"')])
    [new] = await after.encode([_plain(b'"written today"')])
    assert old.metadata[KEY_ID_METADATA] == OLD_KEY_ID.encode()
    assert new.metadata[KEY_ID_METADATA] == NEW_KEY_ID.encode()
    assert await after.decode([old, new]) == [_plain(b'"written last year"'), _plain(b'"written today"')]


async def test_a_missing_key_fails_naming_the_key_id() -> None:
    [new] = await EncryptionCodec(TEST_KEYS).encode([_plain(b'"x"')])
    with pytest.raises(UnknownEncryptionKey, match=f"key id '{NEW_KEY_ID}'.*not configured") as missing:
        await EncryptionCodec({OLD_KEY_ID: OLD_KEY}).decode([new])
    assert missing.value.key_id == NEW_KEY_ID


async def test_payloads_written_before_encryption_pass_through() -> None:
    plain = _plain(b'"from before encryption was on"')
    assert await EncryptionCodec(TEST_KEYS).decode([plain]) == [plain]


async def test_plaintext_is_refused_when_encryption_is_required() -> None:
    strict = codec_from_env(TEST_ENV)  # SAGAWORKS_REQUIRE_ENCRYPTION=1
    assert strict is not None and not strict.accept_plaintext
    plain = _plain(b'{"order_id": "forged"}')
    [refused] = await strict.decode([plain])
    assert refused.metadata["encoding"] == REFUSED_ENCODING and not refused.data  # nothing of it is kept
    # Converting it fails, naming why (a signal carrying it is dropped, an update rejected).
    with pytest.raises(Exception, match="SAGAWORKS_REQUIRE_ENCRYPTION"):
        await data_converter(TEST_ENV).decode([plain], [OrderInput])
    [sealed] = await strict.encode([plain])
    assert await strict.decode([sealed]) == [plain]
    # The codec server's copy shows plaintext to the UI; the strict codec stays strict.
    assert await strict.lenient().decode([plain]) == [plain]
    assert not strict.accept_plaintext
    lenient_env = {k: v for k, v in TEST_ENV.items() if k != "SAGAWORKS_REQUIRE_ENCRYPTION"}
    assert codec_from_env(lenient_env).accept_plaintext  # type: ignore[union-attr]  # TEST_ENV configures encryption: a codec is returned


async def test_tampered_ciphertext_is_refused() -> None:
    codec = EncryptionCodec(TEST_KEYS)
    [sealed] = await codec.encode([_plain(b'{"amount_cents": 100}')])
    for index in (0, 20, len(sealed.data) - 1):  # nonce, ciphertext, tag
        altered = bytearray(sealed.data)
        altered[index] ^= 0x01
        tampered = Payload(metadata=dict(sealed.metadata), data=bytes(altered))
        with pytest.raises(TamperedPayload, match="failed authentication"):
            await codec.decode([tampered])
    with pytest.raises(TamperedPayload):
        await codec.decode([Payload(metadata=dict(sealed.metadata), data=sealed.data[:10])])


async def test_tampered_metadata_is_refused() -> None:
    codec = EncryptionCodec(TEST_KEYS)
    [sealed] = await codec.encode([_plain(b'"x"')])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: OLD_KEY_ID.encode()}, data=sealed.data)
    marked = Payload(metadata={**sealed.metadata, COMPRESSION_METADATA: b"zlib"}, data=sealed.data)
    for tampered in (relabelled, marked):
        with pytest.raises(TamperedPayload):
            await codec.decode([tampered])


def _entry(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def test_keys_from_the_environment_newest_last() -> None:
    codec = codec_from_env(TEST_ENV)
    assert codec is not None and codec.key_ids == [OLD_KEY_ID, NEW_KEY_ID] and codec.key_id == NEW_KEY_ID
    assert not codec.compress
    assert codec_from_env({**TEST_ENV, "SAGAWORKS_ENCRYPTION_COMPRESS": "1"}).compress  # type: ignore[union-attr]  # TEST_ENV configures encryption: a codec is returned


def test_keys_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(
        f"# rotated 2026-01\n{_entry(OLD_KEY_ID, OLD_KEY)}\n\n{_entry(NEW_KEY_ID, NEW_KEY)}  # newest\n"
    )
    codec = codec_from_env({"SAGAWORKS_ENCRYPTION_KEY_FILE": str(key_file)})
    assert codec is not None and codec.key_ids == [OLD_KEY_ID, NEW_KEY_ID]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SAGAWORKS_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"short").decode()}, "key 'k1' is 5 bytes"),
        ({"SAGAWORKS_ENCRYPTION_KEYS": "k1:not base64!"}, "SAGAWORKS_ENCRYPTION_KEYS: key 'k1' is not valid base64"),
        ({"SAGAWORKS_ENCRYPTION_KEYS": base64.b64encode(OLD_KEY).decode()}, "entry 1 is not of the form"),
        ({"SAGAWORKS_ENCRYPTION_KEYS": f"{_entry('k1', OLD_KEY)},{_entry('k1', NEW_KEY)}"}, "'k1' appears twice"),
        ({"SAGAWORKS_ENCRYPTION_KEYS": _entry("bad id", OLD_KEY)}, "key id 'bad id' must be"),
        ({"SAGAWORKS_ENCRYPTION_KEY_FILE": "/nonexistent/keys"}, "cannot read /nonexistent/keys"),
        ({**TEST_ENV, "SAGAWORKS_ENCRYPTION_KEY_FILE": "/k"}, "not both"),
        ({"SAGAWORKS_REQUIRE_ENCRYPTION": "1"}, "no keys are configured"),
    ],
)
def test_bad_configuration_fails_clearly_without_showing_keys(environ: dict[str, str], message: str) -> None:
    with pytest.raises(EncryptionConfigError, match=message) as bad:
        codec_from_env(environ)
    for key in (OLD_KEY, NEW_KEY):
        assert base64.b64encode(key).decode()[:12] not in str(bad.value)


def test_a_new_key_entry_is_a_valid_configuration() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "sagaworks.client.codec", "prod-2026-01"], capture_output=True, text=True, check=True
    ).stdout.strip()
    keys = parse_keys(printed, "printed")
    assert list(keys) == ["prod-2026-01"] and len(keys["prod-2026-01"]) == 32
    assert new_key_entry("k") != new_key_entry("k")


async def test_failure_messages_and_stack_traces_are_encrypted_too() -> None:
    converter = data_converter(TEST_ENV)
    try:
        raise ApplicationError("card of ada@example.com declined", type="PaymentDeclined", non_retryable=True)
    except ApplicationError as raised:
        failure = Failure()
        await converter.encode_failure(raised, failure)
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encryption-key-id"] == NEW_KEY_ID.encode()
    assert b"ada@example.com" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.message == "card of ada@example.com declined"
    assert decoded.type == "PaymentDeclined"
