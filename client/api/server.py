"""Run the API with uvicorn (what ``saga api`` calls)."""

from __future__ import annotations

import logging
import os

import uvicorn

from sagaworks.client.api.app import create_app
from sagaworks.client.api.settings import ApiSettings
from sagaworks.client.observability import configure_logging

log = logging.getLogger("sagaworks.api")

LOOPBACK = "127.0.0.1"


def bind_address(host: str, token: str | None) -> str:
    """``host``, unless there is no token: then loopback only, whatever was asked."""
    if token is None and host not in (LOOPBACK, "localhost", "::1"):
        log.warning(
            "SAGAWORKS_API_TOKEN is unset: binding to %s only, not %s (set a token to serve other hosts)",
            LOOPBACK,
            host,
        )
        return LOOPBACK
    if token is None:
        log.warning("SAGAWORKS_API_TOKEN is unset: no authentication, so the API listens on %s only", host)
    return host


def serve(host: str = LOOPBACK, port: int = 8000, token: str | None = None) -> None:
    """Serve the API and console until interrupted (blocking).

    ``token`` defaults to ``SAGAWORKS_API_TOKEN``; without one the API binds to 127.0.0.1.
    """
    configure_logging()
    token = token or os.environ.get("SAGAWORKS_API_TOKEN") or None
    host = bind_address(host, token)
    app = create_app(ApiSettings(token=token))
    log.info("sagaworks console at http://%s:%d/ (OpenAPI at /openapi.json)", host, port)
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=False, server_header=False)
