"""The codec server: lets the Temporal Web UI and CLI show encrypted payloads decoded.

Temporal's server stores only ciphertext (``client.codec``). A person who holds the token
points the Web UI (``--ui-codec-endpoint`` of the embedded server, ``TEMPORAL_CODEC_ENDPOINT``
in docker-compose.yml) or the ``temporal`` CLI (``--codec-endpoint``, ``--codec-auth``) at
this server; their browser sends it the payloads it shows and gets them back decrypted, so
plaintext never passes through Temporal. The shape follows temporalio/samples-python
``encryption/codec_server.py``: ``POST /encode`` and ``POST /decode`` take and return
Temporal's JSON form of ``Payloads`` (``{"payloads": [{"metadata": {...}, "data": "..."}]}``,
bytes in base64).

Three guards:

- **A bearer token.** ``Authorization: Bearer TOKEN`` (the CLI's ``--codec-auth``). The
  Web UI sends an ``Authorization`` header only with its own OIDC login, so for the UI the
  token can instead be the first path segment of the endpoint, ``http://HOST:PORT/TOKEN``
  (the UI then posts to ``/TOKEN/decode``). Anyone who can open that UI can read its
  configured endpoint: keep such a UI private (the embedded one listens on loopback), or
  leave the token out of the UI's configuration and let each person enter
  ``http://HOST:PORT/TOKEN`` in the UI's own codec settings (kept in their browser).
  Access logs are off, so the token is not written to them.
- **A body cap.** A request body over ``max_body_bytes`` (``SAGAWORKS_CODEC_MAX_BODY_BYTES``,
  default 8 MiB: many payloads of a history page, each under Temporal's 2 MB blob limit) is
  refused with 413 before it is read into memory.
- **CORS limited to the UI's origin** (exactly as the browser's address bar shows it, e.g.
  ``http://localhost:8233``): a page from any other origin cannot call this server.

``serve()`` reads the token from ``SAGAWORKS_CODEC_TOKEN`` and the origin from
``SAGAWORKS_CODEC_UI_ORIGIN`` when they are not given, and the keys as every client does.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from sagaworks.client.api.security import BodyLimit
from sagaworks.client.codec import KEYS_ENV, EncryptionCodec, EncryptionConfigError, EncryptionError
from sagaworks.client.connection import DATA_CONVERTER, check_configuration

TOKEN_ENV = "SAGAWORKS_CODEC_TOKEN"
UI_ORIGIN_ENV = "SAGAWORKS_CODEC_UI_ORIGIN"
MAX_BODY_ENV = "SAGAWORKS_CODEC_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 8 * 2**20
DEFAULT_UI_ORIGIN = "http://localhost:8233"
DEFAULT_PORT = 8081
MIN_TOKEN_CHARS = 24
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # safe as a URL path segment (secrets.token_urlsafe)

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def create_app(
    codec: PayloadCodec, *, token: str, ui_origin: str = DEFAULT_UI_ORIGIN, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """The codec server's ASGI app: ``codec`` behind ``token``, callable from ``ui_origin``,
    bodies up to ``max_body_bytes``.

    Raises:
        ValueError: the token is shorter than 24 characters or not URL-safe.
    """
    if len(token) < MIN_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        raise ValueError(
            f"the codec server token must be at least {MIN_TOKEN_CHARS} characters of A-Z a-z 0-9 _ - "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    expected = token.encode()
    app = FastAPI(title="sagaworks codec server", docs_url=None, redoc_url=None, openapi_url=None)
    # Inside CORS, so the UI's page can read the 413 too.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[ui_origin.rstrip("/")],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )

    def authorize(presented: str | None) -> None:
        if presented is None or not secrets.compare_digest(presented.encode(), expected):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    async def apply(transform: Transform, request: Request) -> Response:
        try:
            payloads = json_format.Parse((await request.body()).decode(), Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as err:
            raise HTTPException(400, f"body is not Temporal's JSON form of Payloads: {err}") from None
        try:
            result = Payloads(payloads=await transform(payloads.payloads))
        except EncryptionError as err:
            raise HTTPException(400, str(err)) from None
        return Response(json_format.MessageToJson(result), media_type="application/json")

    def bearer(request: Request) -> str | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else None

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        authorize(bearer(request))
        return await apply(codec.encode, request)

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        authorize(bearer(request))
        return await apply(codec.decode, request)

    @app.post("/{path_token}/encode")
    async def encode_for_ui(path_token: str, request: Request) -> Response:
        authorize(path_token)
        return await apply(codec.encode, request)

    @app.post("/{path_token}/decode")
    async def decode_for_ui(path_token: str, request: Request) -> Response:
        authorize(path_token)
        return await apply(codec.decode, request)

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    ui_origin: str | None = None,
) -> None:
    """Run the codec server until interrupted, with the keys this environment configures.

    Raises:
        EncryptionConfigError: no encryption keys are configured.
        ValueError: no token (``SAGAWORKS_CODEC_TOKEN``), or a weak one.
    """
    check_configuration()
    codec = DATA_CONVERTER.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise EncryptionConfigError(f"the codec server needs the encryption keys: set {KEYS_ENV} (see client.codec)")
    # The UI shows every payload of a history, including plaintext ones a worker refused.
    codec = codec.lenient()
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ValueError(f"the codec server needs a token: set {TOKEN_ENV} or pass one")
    ui_origin = ui_origin or os.environ.get(UI_ORIGIN_ENV) or DEFAULT_UI_ORIGIN
    max_body_bytes = int(os.environ.get(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES))
    app = create_app(codec, token=token, ui_origin=ui_origin, max_body_bytes=max_body_bytes)
    # No access log: the UI's endpoint carries the token in its path.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
