"""Recorded histories (tests/histories/) must keep replaying against the workflow code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.workflow import NondeterminismError

from client.replay import history_files, load_history, replay
from tests.drifted_order import DriftedOrderSaga

HISTORIES = Path(__file__).parent / "histories"


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


async def test_replay_catches_a_nondeterministic_change() -> None:
    results = await replay([load_history(HISTORIES / "order_completed.json")], workflows=[DriftedOrderSaga])
    [failure] = results.replay_failures.values()
    assert isinstance(failure, NondeterminismError)
