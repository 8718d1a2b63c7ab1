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

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError

from sagaworks.client.codec import EncryptionConfigError, codec_from_env
from sagaworks.client.observability import runtime, tracing_plugins


class KnownErrorsWithoutStackTraces(DefaultFailureConverter):
    """Failures of errors we raise on purpose carry no stack trace; bugs keep theirs.

    An ``ApplicationError`` is raised deliberately (the error taxonomy, the saga's report):
    its message and details say everything, and the SDK frames behind it only bury that in
    the Web UI. Any other exception is a bug, and its stack trace is what fixes it.
    """

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if isinstance(exception, ApplicationError) and exception.failure is None:
            exception = exception.with_traceback(None)
            if type(exception.__cause__).__name__ == "_RemoteTraceback":
                # A process pool's text copy of the child's stack trace (concurrent.futures
                # sets it as the cause): a stack trace all the same.
                exception.__cause__ = None
        super().to_failure(exception, payload_converter, failure)


class EncryptedFailures(KnownErrorsWithoutStackTraces):
    """As above, with messages and stack traces moved into an (encrypted) payload."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


def data_converter(environ: Mapping[str, str] = os.environ) -> DataConverter:
    """Pydantic v2 payloads, encrypted when ``environ`` configures keys (``client.codec``).

    With encryption on, failures' messages and stack traces move into an encrypted payload
    too (they can quote inputs); the server sees "Encoded failure".
    """
    codec = codec_from_env(environ)
    if codec is None:
        # No codec at all when encryption is off: the SDK then skips the codec pass entirely.
        return dataclasses.replace(pydantic_data_converter, failure_converter_class=KnownErrorsWithoutStackTraces)
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec, failure_converter_class=EncryptedFailures)


try:
    DATA_CONVERTER = data_converter()
    """What every client, worker and replayer of this process uses (from the environment)."""
    _CONFIGURATION_ERROR: EncryptionConfigError | None = None
except EncryptionConfigError as invalid:
    # A bad key setting must not break commands that never touch a payload (--help,
    # catalog); everything that does calls check_configuration() first and refuses.
    DATA_CONVERTER = data_converter({})
    _CONFIGURATION_ERROR = invalid


def check_configuration() -> None:
    """Raise the encryption setting's error, if the environment's keys were unusable."""
    if _CONFIGURATION_ERROR is not None:
        raise _CONFIGURATION_ERROR


DEFAULT_ADDRESS = "localhost:7233"
TASK_QUEUE = os.environ.get("SAGAWORKS_TASK_QUEUE", "sagaworks")
"""The task queue the worker polls and clients start workflows on."""


async def connect(*, address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to Temporal as configured by envconfig; arguments override it.

    Raises:
        EncryptionConfigError: the encryption keys in the environment are unusable.
    """
    check_configuration()
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
