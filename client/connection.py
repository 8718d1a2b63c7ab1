"""The one place that builds a Temporal client.

Worker, CLI, tests, benchmarks and the replayer all use :func:`connect` (or
:data:`DATA_CONVERTER`), so they agree on address, namespace, TLS / API key (Temporal's
envconfig: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_PROFILE`` and TOML profiles), the pydantic data converter, payload encryption
(``SAGAWORKS_ENCRYPTION_KEYS`` / ``SAGAWORKS_ENCRYPTION_KEY_FILE``: see ``client.codec``)
and tracing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfig

from client.codec import codec_from_env
from client.observability import runtime, tracing_plugins


def data_converter(environ: Mapping[str, str] = os.environ) -> DataConverter:
    """Pydantic v2 payloads, encrypted when ``environ`` configures keys (``client.codec``).

    With encryption on, failures' messages and stack traces move into an encrypted payload
    too (they can quote inputs); the server sees "Encoded failure".
    """
    codec = codec_from_env(environ)
    if codec is None:
        # No codec at all when encryption is off: the SDK then skips the codec pass entirely.
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


DATA_CONVERTER = data_converter()
"""What every client, worker and replayer of this process uses (from the environment)."""

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
