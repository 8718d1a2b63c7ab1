"""Encryption test helpers: fixed keys FOR TESTS ONLY (public, in git: never configure them
anywhere else) and a codec server running in the test's event loop.

tests/histories/encrypted/ was recorded under these keys, so its replay test needs them.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest_asyncio
import uvicorn

from sagaworks.client.codec import KEYS_ENV, REQUIRE_ENV, EncryptionCodec
from sagaworks.client.codec_server import create_app
from tests.ports import free_port

OLD_KEY_ID, OLD_KEY = "test-2025", b"sagaworks TEST key 2025: public!"
NEW_KEY_ID, NEW_KEY = "test-2026", b"sagaworks TEST key 2026: public!"
TEST_KEYS = {OLD_KEY_ID: OLD_KEY, NEW_KEY_ID: NEW_KEY}
"""Oldest first: new payloads use ``test-2026``."""
TEST_ENV = {
    KEYS_ENV: ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in TEST_KEYS.items()),
    REQUIRE_ENV: "1",
}
"""The environment that configures :data:`TEST_KEYS` and requires encryption (as compose does)."""
TOKEN = "test-token-0123456789abcdefghij"
"""The codec server's bearer token in tests."""


class CodecServer:
    """The codec server in this event loop, for a UI on ``ui_port``."""

    def __init__(self) -> None:
        self.port, self.ui_port = free_port(), free_port()
        app = create_app(EncryptionCodec(TEST_KEYS), token=TOKEN, ui_origin=f"http://127.0.0.1:{self.ui_port}")
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            assert not self._serving.done(), self._serving
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Return once it no longer listens."""
        self._server.should_exit = True
        if self._serving:
            await self._serving


@pytest_asyncio.fixture
async def codec_server() -> AsyncIterator[CodecServer]:
    server = CodecServer()
    await server.start()
    yield server
    await server.stop()
