"""Logs, traces and metrics, configured from the environment in one place.

- Logs: structlog renders stdlib records (the SDK's ``workflow.logger`` and
  ``activity.logger`` included) as JSON when stderr is not a TTY, as coloured text when
  it is; the workflow and activity context the SDK attaches becomes flat keys
  (workflow_id, run_id, activity, attempt). ``SAGAWORKS_LOG_LEVEL`` sets the level.
- Traces: ``OTEL_TRACES_EXPORTER=console`` (or ``otlp`` with
  ``opentelemetry-exporter-otlp`` installed) turns on OpenTelemetry through Temporal's
  plugin; unset or ``none``, tracing is off.
- Metrics: ``SAGAWORKS_METRICS_PORT`` exposes the SDK runtime's Prometheus metrics.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from functools import cache
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:  # the SDK is imported where it is used: the CLI configures logging without it
    from temporalio.plugin import SimplePlugin
    from temporalio.runtime import Runtime

_CONTEXT_KEYS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
    "activity_type": "activity",
    "attempt": "attempt",
}


def _flatten_temporal_context(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    for extra in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, extra, None) if record is not None else None
        for key, value in (details or {}).items():
            if key in _CONTEXT_KEYS:
                event.setdefault(_CONTEXT_KEYS[key], value)
    for key in ("key", "reference", "undone"):
        if record is not None and hasattr(record, key):
            event.setdefault(key, getattr(record, key))
    return event


def configure_logging(level: str | None = None) -> None:
    """Route stdlib and structlog logging through one structlog renderer."""
    json_output = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _flatten_temporal_context],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if json_output else (lambda _l, _m, e: e),
                renderer,
            ],
        )
    )
    # The context goes into keys (see _flatten_temporal_context), not into the message.
    # Only a process that runs workflow or activity code logs through the SDK's loggers,
    # and it has loaded them (with its worker) before it configures logging.
    for module, flag in (
        ("temporalio.activity", "activity_info_on_message"),
        ("temporalio.workflow", "workflow_info_on_message"),
    ):
        if module in sys.modules:
            setattr(sys.modules[module].logger, flag, False)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("SAGAWORKS_LOG_LEVEL", "INFO")).upper())


def tracing_plugins() -> list[SimplePlugin]:
    """Temporal's OpenTelemetry plugin when ``OTEL_TRACES_EXPORTER`` asks for traces."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none"):
        return []
    import opentelemetry.trace
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as err:
            raise SystemExit("OTEL_TRACES_EXPORTER=otlp needs: pip install opentelemetry-exporter-otlp") from err
        exporter = OTLPSpanExporter()
    else:
        raise SystemExit(f"OTEL_TRACES_EXPORTER={exporter_name!r}: use console, otlp or none")
    # Temporal's provider drops spans of replayed workflow code, so each span shows once.
    provider = create_tracer_provider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    opentelemetry.trace.set_tracer_provider(provider)
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


@cache
def runtime() -> Runtime:
    """The process's Temporal runtime, with a Prometheus endpoint when one is configured."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    port = os.environ.get("SAGAWORKS_METRICS_PORT")
    if not port:
        return Runtime.default()
    bind = os.environ.get("SAGAWORKS_METRICS_BIND", "127.0.0.1")
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{bind}:{port}")))
