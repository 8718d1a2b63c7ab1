"""Recorded histories (tests/histories/) must keep replaying against the workflow code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from sagaworks.client.codec import ENCODING, KEYS_ENV
from sagaworks.client.connection import data_converter
from sagaworks.client.replay import history_files, load_history, replay
from tests.encryption import NEW_KEY_ID, OLD_KEY, OLD_KEY_ID, TEST_ENV
from tests.drifted_order import DriftedOrderSaga
from tests.record_histories import ENCRYPTED

HISTORIES = Path(__file__).parent / "histories"
ENCRYPTED_HISTORIES = HISTORIES / ENCRYPTED


def test_histories_cover_every_way_a_saga_ends() -> None:
    endings = {
        json.loads(path.read_text())["events"][-1]["eventType"] for path in history_files(HISTORIES)
    }
    assert {
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED",
    } <= endings


@pytest.mark.parametrize("path", history_files(HISTORIES), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    results = await replay([load_history(path)])
    assert dict(results.replay_failures) == {}


async def test_every_history_replays_in_one_unsandboxed_replayer() -> None:
    """Production workers run workflow code unsandboxed: modules are imported once and
    shared by every run, so state one run leaves in a module would change the next run's
    commands. The sandbox (each test above) re-imports per run and cannot see that; one
    replayer running every history in turn can."""
    histories = [load_history(path) for path in history_files(HISTORIES)]
    results = await replay(histories, runner=UnsandboxedWorkflowRunner())
    assert dict(results.replay_failures) == {}


async def test_replay_catches_a_nondeterministic_change() -> None:
    results = await replay([load_history(HISTORIES / "order_completed.json")], workflows=[DriftedOrderSaga])
    [failure] = results.replay_failures.values()
    assert isinstance(failure, NondeterminismError)


def test_encrypted_histories_are_ciphertext_and_end_both_ways() -> None:
    endings = set()
    for path in history_files(ENCRYPTED_HISTORIES):
        history = load_history(path)
        [workflow_input] = history.events[0].workflow_execution_started_event_attributes.input.payloads
        assert workflow_input.metadata["encoding"] == ENCODING
        endings.add(history.events[-1].event_type)
    assert len(endings) == 2  # completed and failed (compensated)


@pytest.mark.parametrize("path", history_files(ENCRYPTED_HISTORIES), ids=lambda p: f"encrypted-{p.stem}")
async def test_encrypted_history_replays_with_its_keys(path: Path) -> None:
    results = await replay([load_history(path)], data_converter=data_converter(TEST_ENV))
    assert dict(results.replay_failures) == {}


async def test_replay_of_an_encrypted_history_catches_a_nondeterministic_change() -> None:
    history = load_history(ENCRYPTED_HISTORIES / "order_completed.json")
    results = await replay([history], workflows=[DriftedOrderSaga], data_converter=data_converter(TEST_ENV))
    [failure] = results.replay_failures.values()
    assert isinstance(failure, NondeterminismError)


async def test_an_encrypted_history_without_its_key_fails_naming_the_key_id() -> None:
    old_only = data_converter({KEYS_ENV: f"{OLD_KEY_ID}:{base64.b64encode(OLD_KEY).decode()}"})
    results = await replay([load_history(ENCRYPTED_HISTORIES / "order_completed.json")], data_converter=old_only)
    [failure] = results.replay_failures.values()
    assert f"key id '{NEW_KEY_ID}'" in str(failure)
