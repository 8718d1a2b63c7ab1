"""Property-based fuzzing of every API operation from /openapi.json (schemathesis).

Each operation gets a bounded number of generated requests, valid and invalid; every answer
must be a documented status (never a 5xx), with the documented content type and a body that
matches its schema. No worker polls the fuzzing task queue, so the runs it starts stay
RUNNING until the module terminates them (and deletes the schedules it created).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from temporalio.testing import WorkflowEnvironment

from sagaworks.client.api import ApiSettings, create_app
from sagaworks.client.connection import connect
from tests.apiserver import api_server

TOKEN = "fuzz-" + uuid.uuid4().hex
QUEUE = f"tq-fuzz-{uuid.uuid4()}"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _clean_up_after_fuzzing(address: str) -> None:
    async def terminate() -> None:
        client = await connect(address=address)
        # Schedules the fuzzer managed to create would go on starting runs.
        async for listed in await client.list_schedules():
            handle = client.get_schedule_handle(listed.id)
            action = (await handle.describe()).schedule.action
            if getattr(action, "task_queue", None) == QUEUE:
                await handle.delete()
        async for execution in client.list_workflows(f"TaskQueue = '{QUEUE}' AND ExecutionStatus = 'Running'"):
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("fuzzing over")

    # A thread of its own: this runs between tests, outside pytest-asyncio's event loop.
    thread = threading.Thread(target=asyncio.run, args=(terminate(),))
    thread.start()
    thread.join(timeout=120)


@pytest.fixture(scope="module")
def api_schema(dev_env: WorkflowEnvironment) -> Iterator[Any]:
    address = dev_env.client.service_client.config.target_host
    with api_server(ApiSettings(token=TOKEN, task_queue=QUEUE, address=address, database_url=None)) as api:
        yield schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    _clean_up_after_fuzzing(address)


def _operations() -> list[tuple[str, str]]:
    spec = create_app(ApiSettings(token=TOKEN)).openapi()
    return [
        (path, method.upper())
        for path, methods in spec["paths"].items()
        # A stream that lasts as long as the run: tests/test_api.py follows one to its end.
        if not path.endswith("/events")
        for method in methods
    ]


@pytest.mark.parametrize(("path", "method"), _operations())
def test_every_operation_answers_as_documented(api_schema: Any, path: str, method: str) -> None:
    operation = api_schema[path][method]
    # No worker polls the fuzzing queue, so health rightly answers its documented 503.
    checks = [check for check in CHECKS if not (path == "/api/health" and check is not_a_server_error)]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=checks, timeout=60)

    answers_as_documented()
