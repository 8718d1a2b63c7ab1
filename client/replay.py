"""Replay recorded histories against the current workflow code.

A replay failure means the code would no longer follow what already happened in those
runs (a nondeterministic change): deploy it behind ``workflow.patched`` instead.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter, DefaultFailureConverter
from temporalio.worker import Replayer, WorkflowReplayResults, WorkflowRunner

from sagaworks.client.connection import DATA_CONVERTER, check_configuration


def load_history(path: Path) -> WorkflowHistory:
    """A history saved by ``saga history ID --out FILE`` (or the UI's JSON download)."""
    data = json.loads(path.read_text())
    # Workflow code may read its own id, so replay it under the id it ran with.
    started = data["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, data)


def history_files(folder: Path) -> list[Path]:
    """The ``*.json`` histories of ``folder``, sorted."""
    return sorted(folder.glob("*.json"))


async def fetch_history(client: Client, workflow_id: str) -> WorkflowHistory:
    """The full history of a workflow's latest run."""
    return await client.get_workflow_handle(workflow_id).fetch_history()


async def replay(
    histories: Iterable[WorkflowHistory],
    workflows: list[type] | None = None,
    data_converter: DataConverter = DATA_CONVERTER,
    runner: WorkflowRunner | None = None,
) -> WorkflowReplayResults:
    """Replay every history; failures are collected, not raised.

    ``runner`` defaults to the SDK's sandboxed runner (its determinism checks).

    Histories written with encryption on decode only with a converter that holds their
    keys: the default is the one the environment configures, as for the worker.
    """
    if data_converter is DATA_CONVERTER:
        check_configuration()
    if workflows is None:
        from sagaworks import registry

        workflows = registry().workflows()

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    # A replay's own failures are reported here and stored nowhere: keep their messages
    # readable even when the converter encrypts failures (encrypted ones still decode).
    readable = dataclasses.replace(data_converter, failure_converter_class=DefaultFailureConverter)
    options: dict[str, Any] = {"workflow_runner": runner} if runner else {}
    replayer = Replayer(workflows=workflows, data_converter=readable, **options)
    return await replayer.replay_workflows(each(), raise_on_replay_failure=False)
