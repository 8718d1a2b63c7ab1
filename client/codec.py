"""Payload encryption: AES-256-GCM with rotating keys, optional compression first.

Every payload a client or worker sends (workflow and activity inputs and results, queries,
signals, failures' details, memos) passes through :class:`EncryptionCodec`, so Temporal's
server, its database and its Web UI only ever hold ciphertext. The shape follows
temporalio/samples-python ``encryption/codec.py``; what we add:

- **Key rotation.** The codec holds several keys by id; new payloads are encrypted with
  the newest (the last configured), and each payload names its key id in its metadata
  (``encryption-key-id``), so payloads written under an older key still decode as long as
  that key stays configured. Retire a key only once no history that needs it is kept.
- **Authenticated metadata.** The key id and the compression flag are bound to the
  ciphertext as GCM associated data: altering either, or one byte of the ciphertext, makes
  decryption fail (:class:`TamperedPayload`) instead of yielding other data.
- **Optional compression** (zlib) of the serialized payload before encryption, kept only
  when it is smaller. Off by default: compressing secrets together with data an attacker
  chooses can leak length information, so turn it on for large, non-secret payloads.

Configuration (read by :func:`codec_from_env`, used by ``client.connection``):

``SAGAWORKS_ENCRYPTION_KEYS``
    ``id1:BASE64KEY,id2:BASE64KEY`` (32-byte keys, base64); the last is the newest.
``SAGAWORKS_ENCRYPTION_KEY_FILE``
    A file with the same entries, one per line (``#`` comments allowed); instead of the above.
``SAGAWORKS_ENCRYPTION_COMPRESS``
    ``1`` compresses payloads before encrypting them.
``SAGAWORKS_REQUIRE_ENCRYPTION``
    ``1`` refuses to run without keys (docker-compose.yml sets it), so a deployment that
    forgot its keys fails at start instead of writing plaintext; and it refuses to decode
    plaintext payloads, so nobody without a key can hand a worker input (a plain-JSON
    ``temporal workflow start``, signal or update): the codec decodes such a payload to a
    :data:`REFUSED_ENCODING` payload that no converter reads, so a plaintext signal is
    dropped (the SDK logs it; the run goes on), an update is rejected, and a run started
    with plaintext input never runs its code (its workflow task fails naming the refusal;
    terminate it). The codec server still shows plaintext payloads to the UI (display only).

``python -m client.codec KEY_ID`` prints a fresh ``KEY_ID:BASE64KEY`` entry.
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
import re
import sys
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of an encrypted payload (the samples' value, so tools agree)."""
KEY_ID_METADATA = "encryption-key-id"
COMPRESSION_METADATA = "encryption-compression"
ZLIB = b"zlib"
REFUSED_ENCODING = b"refused/plaintext-while-SAGAWORKS_REQUIRE_ENCRYPTION-is-set"
"""What a plaintext payload decodes to when encryption is required: converting it fails
("Unknown payload encoding ..."), naming the reason, wherever it is used."""

KEYS_ENV = "SAGAWORKS_ENCRYPTION_KEYS"
KEY_FILE_ENV = "SAGAWORKS_ENCRYPTION_KEY_FILE"
COMPRESS_ENV = "SAGAWORKS_ENCRYPTION_COMPRESS"
REQUIRE_ENV = "SAGAWORKS_REQUIRE_ENCRYPTION"

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per payload
TAG_BYTES = 16  # GCM's authentication tag, which ends the ciphertext
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TRUE = {"1", "true", "yes", "on"}


class EncryptionError(ValueError):
    """A payload cannot be encrypted or decrypted with the configured keys."""


class EncryptionConfigError(EncryptionError):
    """The key configuration is invalid; the message names the variable or file and the key id."""


class UnknownEncryptionKey(EncryptionError):
    """A payload was encrypted under a key id that is not configured here."""

    def __init__(self, key_id: str, known: Iterable[str]) -> None:
        self.key_id = key_id
        super().__init__(
            f"payload is encrypted with key id {key_id!r}, which is not configured "
            f"(configured: {', '.join(known) or 'none'}); add it to {KEYS_ENV} or {KEY_FILE_ENV}"
        )


class TamperedPayload(EncryptionError):
    """A payload's ciphertext or authenticated metadata was altered (GCM tag mismatch)."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM payload codec with key ids (see the module notes)."""

    def __init__(self, keys: Mapping[str, bytes], *, compress: bool = False, accept_plaintext: bool = True) -> None:
        """
        Args:
            keys: Key id -> 32-byte key, oldest first; the last one encrypts new payloads.
            compress: zlib-compress each payload before encrypting it (when that is smaller).
            accept_plaintext: Decode unencrypted payloads as they are (written before
                encryption was turned on). False refuses them (encryption required).
        """
        super().__init__()
        if not keys:
            raise EncryptionConfigError("an encryption codec needs at least one key")
        for key_id, key in keys.items():
            _check_key(key_id, key, "keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = list(keys)[-1]
        self.compress = compress
        self.accept_plaintext = accept_plaintext

    def lenient(self) -> EncryptionCodec:
        """This codec, but passing plaintext payloads through (for display, never for input)."""
        codec = copy.copy(self)
        codec.accept_plaintext = True
        return codec

    @property
    def key_ids(self) -> list[str]:
        """The configured key ids, oldest first."""
        return list(self._ciphers)

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """``payload`` serialized, maybe compressed, and encrypted under the newest key."""
        data = payload.SerializeToString()
        compression = b""
        if self.compress:
            packed = zlib.compress(data)
            if len(packed) < len(data):
                data, compression = packed, ZLIB
        metadata = {"encoding": ENCODING, KEY_ID_METADATA: self.key_id.encode()}
        if compression:
            metadata[COMPRESSION_METADATA] = compression
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, data, _associated_data(self.key_id, compression))
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; payloads that are not encrypted pass through unchanged
        unless plaintext is refused.

        Raises:
            UnknownEncryptionKey: its key id is not configured.
            TamperedPayload: its ciphertext or metadata was altered, or it is too short to
                hold a nonce and a tag.
            EncryptionError: it decrypts, but not to a serialized payload (another program
                sealed it with this key).
        When plaintext is refused, an unencrypted payload becomes a :data:`REFUSED_ENCODING`
        one instead of raising here: a codec error would fail every workflow task of the run
        for good (the SDK decodes a whole activation first), while a payload that does not
        convert only loses the signal or update that carried it.
        """
        if payload.metadata.get("encoding") != ENCODING:
            if not self.accept_plaintext:
                return Payload(metadata={"encoding": REFUSED_ENCODING})
            # Written before encryption was turned on: still readable.
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownEncryptionKey(key_id, self._ciphers)
        compression = payload.metadata.get(COMPRESSION_METADATA, b"")
        if compression not in (b"", ZLIB):
            raise TamperedPayload(f"payload under key id {key_id!r} names unknown compression {compression!r}")
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            # Shorter, AESGCM would take a cut nonce (and refuse one under 8 bytes with a bare ValueError).
            raise TamperedPayload(
                f"payload under key id {key_id!r} holds {len(payload.data)} bytes of data; an encrypted "
                f"payload holds at least {NONCE_BYTES + TAG_BYTES} (a {NONCE_BYTES}-byte nonce and a "
                f"{TAG_BYTES}-byte tag): it was cut short or is not ciphertext"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            data = cipher.decrypt(nonce, sealed, _associated_data(key_id, compression))
        except InvalidTag:
            raise TamperedPayload(
                f"payload under key id {key_id!r} failed authentication: its ciphertext or "
                "metadata was altered, or it was encrypted with a different key of that id"
            ) from None
        try:
            return Payload.FromString(zlib.decompress(data) if compression else data)
        except (zlib.error, DecodeError):
            raise EncryptionError(
                f"payload under key id {key_id!r} decrypts, but not to a serialized payload"
                f"{' compressed with zlib' if compression else ''}: another program sealed it with this key"
            ) from None


def _associated_data(key_id: str, compression: bytes) -> bytes:
    # Binds the metadata the decoder trusts to the ciphertext.
    return b"sagaworks-payload-v1\0" + key_id.encode() + b"\0" + compression


def _check_key(key_id: str, key: bytes, source: str) -> None:
    if not _KEY_ID.fullmatch(key_id):
        raise EncryptionConfigError(f"{source}: key id {key_id!r} must be 1-64 of A-Z a-z 0-9 . _ -")
    if len(key) != KEY_BYTES:
        raise EncryptionConfigError(f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")


def parse_keys(text: str, source: str) -> dict[str, bytes]:
    """``id:BASE64KEY`` entries separated by commas or lines (``#`` starts a comment).

    ``source`` (the variable or file) is named in every error; key material never is.
    """
    keys: dict[str, bytes] = {}
    entries = (e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(","))
    for number, entry in enumerate((e for e in entries if e), start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep:
            # Without a colon the entry may be a bare key: never echo it.
            raise EncryptionConfigError(f"{source}: entry {number} is not of the form id:base64key")
        if key_id in keys:
            raise EncryptionConfigError(f"{source}: key id {key_id!r} appears twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise EncryptionConfigError(f"{source}: key {key_id!r} is not valid base64") from None
        _check_key(key_id, key, source)
        keys[key_id] = key
    return keys


def codec_from_env(environ: Mapping[str, str] = os.environ) -> EncryptionCodec | None:
    """The codec the environment configures (module notes), or None when encryption is off.

    Raises:
        EncryptionConfigError: the configuration is invalid, names a missing file, or
            encryption is required but no keys are configured.
    """
    inline, key_file = environ.get(KEYS_ENV, "").strip(), environ.get(KEY_FILE_ENV, "").strip()
    if inline and key_file:
        raise EncryptionConfigError(f"set {KEYS_ENV} or {KEY_FILE_ENV}, not both")
    if key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as err:
            raise EncryptionConfigError(f"{KEY_FILE_ENV}: cannot read {key_file}: {err.strerror}") from None
        keys = parse_keys(text, key_file)
    else:
        keys = parse_keys(inline, KEYS_ENV)
    required = environ.get(REQUIRE_ENV, "").strip().lower() in _TRUE
    if not keys:
        if required:
            raise EncryptionConfigError(
                f"{REQUIRE_ENV} is set but no keys are configured: set {KEYS_ENV} or {KEY_FILE_ENV} "
                "(python -m client.codec KEY_ID prints a new key)"
            )
        return None
    return EncryptionCodec(
        keys, compress=environ.get(COMPRESS_ENV, "").strip().lower() in _TRUE, accept_plaintext=not required
    )


def new_key_entry(key_id: str) -> str:
    """A fresh random key as a ``KEY_ID:BASE64KEY`` entry for the variables above."""
    key = os.urandom(KEY_BYTES)
    _check_key(key_id, key, "key id")
    return f"{key_id}:{base64.b64encode(key).decode()}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m client.codec KEY_ID   (prints KEY_ID:BASE64KEY)")
    print(new_key_entry(sys.argv[1]))
