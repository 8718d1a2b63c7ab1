"""The one place that builds a Temporal client.

Worker, CLI, tests, benchmarks and the replayer all use :func:`connect` (or
:data:`DATA_CONVERTER`), so they agree on address, namespace, TLS / API key (Temporal's
envconfig: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_PROFILE`` and TOML profiles), the pydantic data converter and tracing.
"""

from __future__ import annotations

import dataclasses
import os

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError

from client.observability import runtime, tracing_plugins

class KnownErrorsWithoutStackTraces(DefaultFailureConverter):
    """Failures of errors we raise on purpose carry no stack trace; bugs keep theirs.

    An ``ApplicationError`` is raised deliberately (the error taxonomy, the saga's report):
    its message and details say everything, and the SDK frames behind it only bury that in
    the Web UI. Any other exception is a bug, and its stack trace is what fixes it.
    """

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if isinstance(exception, ApplicationError) and exception.failure is None:
            exception = exception.with_traceback(None)
        super().to_failure(exception, payload_converter, failure)


DATA_CONVERTER = dataclasses.replace(pydantic_data_converter, failure_converter_class=KnownErrorsWithoutStackTraces)
"""Pydantic v2 models in and out of every workflow and activity; failures as above."""

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
