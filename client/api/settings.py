"""What the API is configured with (environment variables, overridable by the caller)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from sagaworks.client.connection import TASK_QUEUE
from sagaworks.client.runs import QUERY_TIMEOUT

DEFAULT_MAX_BODY_BYTES = 2 * 2**20
DEFAULT_METRICS_CACHE_SECONDS = 10.0


def _origins() -> tuple[str, ...]:
    raw = os.environ.get("SAGAWORKS_API_CORS_ORIGINS", "")
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip())


@dataclass(frozen=True)
class ApiSettings:
    """The API's settings; the defaults read the environment (names in parentheses)."""

    token: str | None = field(default_factory=lambda: os.environ.get("SAGAWORKS_API_TOKEN") or None)
    """Bearer token every request must carry (``SAGAWORKS_API_TOKEN``); None: no auth, and
    :func:`client.api.serve` then binds to 127.0.0.1 only."""
    max_body_bytes: int = field(
        default_factory=lambda: int(os.environ.get("SAGAWORKS_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    )
    """Larger request bodies are refused with 413 (``SAGAWORKS_API_MAX_BODY_BYTES``)."""
    cors_origins: tuple[str, ...] = field(default_factory=_origins)
    """Origins allowed cross-origin calls (``SAGAWORKS_API_CORS_ORIGINS``, comma separated);
    empty: CORS stays off."""
    task_queue: str = TASK_QUEUE
    """Where runs are started and whose pollers ``/api/health`` looks for."""
    address: str | None = None
    """Temporal address; None: what envconfig says (``TEMPORAL_ADDRESS``...)."""
    metrics_cache_seconds: float = field(
        default_factory=lambda: float(
            os.environ.get("SAGAWORKS_API_METRICS_CACHE_SECONDS", DEFAULT_METRICS_CACHE_SECONDS)
        )
    )
    """How long ``/api/metrics`` and ``/api/workflow/metrics`` keep an answer derived from
    histories (``SAGAWORKS_API_METRICS_CACHE_SECONDS``); 0: derive it on every call."""
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    """The application database ``/api/health`` checks (``DATABASE_URL``); None: not checked."""
    status_query_timeout: timedelta = QUERY_TIMEOUT
    """How long describing a run (``GET /api/workflows/{id}``, its console page) waits for its
    ``status`` query; a run no worker polls is described as ``unavailable`` after it."""
