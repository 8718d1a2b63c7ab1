"""The one place that builds a Temporal client.

Worker, CLI, tests, benchmarks and the replayer all use :func:`connect` (or
:data:`DATA_CONVERTER`), so they agree on address, namespace, TLS / API key (Temporal's
envconfig: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_PROFILE`` and TOML profiles), the pydantic data converter and tracing.
"""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from client.observability import runtime, tracing_plugins

DATA_CONVERTER = pydantic_data_converter
"""Pydantic v2 models in and out of every workflow and activity."""

DEFAULT_ADDRESS = "localhost:7233"
TASK_QUEUE = os.environ.get("SAGAWORKS_TASK_QUEUE", "sagaworks")
"""The task queue the worker polls and clients start workflows on."""


async def connect(*, address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to Temporal as configured by envconfig; arguments override it."""
    config = ClientConfig.load_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if namespace:
        config["namespace"] = namespace
    return await Client.connect(
        **config,
        data_converter=DATA_CONVERTER,
        plugins=tracing_plugins(),
        runtime=runtime(),
    )


def ui_url(client: Client, workflow_id: str, run_id: str | None = None) -> str:
    """The Web UI page of a workflow run (``SAGAWORKS_UI_URL``, default the dev server's)."""
    base = os.environ.get("SAGAWORKS_UI_URL", "http://localhost:8233").rstrip("/")
    path = f"{base}/namespaces/{client.namespace}/workflows/{workflow_id}"
    return f"{path}/{run_id}/history" if run_id else path
