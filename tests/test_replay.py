"""Recorded histories (tests/histories/) must keep replaying against the workflow code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from sagaworks.client.codec import ENCODING, KEYS_ENV
from sagaworks.client.connection import DATA_CONVERTER, data_converter
from sagaworks.client.replay import history_files, load_history, replay
from tests.drifted_order import DriftedOrderSaga
from tests.encryption import NEW_KEY_ID, OLD_KEY, OLD_KEY_ID, TEST_ENV
from tests.record_histories import ENCRYPTED

HISTORIES = Path(__file__).parent / "histories"
ENCRYPTED_HISTORIES = HISTORIES / ENCRYPTED
UNREPLAYABLE = HISTORIES / "unreplayable"
"""Histories the SDK recorded in an order no code can replay: evidence, not regressions."""
RETIRED = HISTORIES / "retired"
"""Histories of runs from before a patch the code has deprecated since (docs/patches.md)."""
ORDER_COMPLETED = "order_completed-20261202.json"
"""An order recorded on the patches' first stage: it replays on the deprecated ones."""

QUERY_RACE = "Update machine does not handle this event: HistoryEvent(id: 20, ActivityTaskScheduled)"


def test_histories_cover_every_way_a_saga_ends() -> None:
    endings = {json.loads(path.read_text())["events"][-1]["eventType"] for path in history_files(HISTORIES)}
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


@pytest.mark.parametrize(
    "path",
    history_files(RETIRED) + history_files(RETIRED / ENCRYPTED),
    ids=lambda p: f"retired-{p.parent.name}-{p.stem}",
)
async def test_a_retired_history_fails_for_want_of_its_patch_markers(path: Path) -> None:
    """Retired, not lost: each fails with a nondeterminism error (the reason it was retired),
    and lacks a marker of a patch the code has deprecated since."""
    from sagaworks.client.patches import code_patches, patch_markers

    history = load_history(path)
    converter = data_converter(TEST_ENV) if path.parent.name == ENCRYPTED else DATA_CONVERTER
    results = await replay([history], data_converter=converter)
    [failure] = results.replay_failures.values()
    assert isinstance(failure, NondeterminismError)
    workflow_type = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    deprecated = {p.patch_id for p in code_patches() if p.stage == "deprecated" and workflow_type in p.workflow_types}
    assert deprecated - set(patch_markers(history)), f"{path.name} holds every deprecated patch's marker"


async def test_replay_catches_a_nondeterministic_change() -> None:
    results = await replay([load_history(HISTORIES / ORDER_COMPLETED)], workflows=[DriftedOrderSaga])
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
    history = load_history(ENCRYPTED_HISTORIES / "order_completed-20261202.json")
    results = await replay([history], workflows=[DriftedOrderSaga], data_converter=data_converter(TEST_ENV))
    [failure] = results.replay_failures.values()
    assert isinstance(failure, NondeterminismError)


async def test_an_encrypted_history_without_its_key_fails_naming_the_key_id() -> None:
    old_only = data_converter({KEYS_ENV: f"{OLD_KEY_ID}:{base64.b64encode(OLD_KEY).decode()}"})
    results = await replay(
        [load_history(ENCRYPTED_HISTORIES / "order_completed-20261202.json")], data_converter=old_only
    )
    [failure] = results.replay_failures.values()
    assert f"key id '{NEW_KEY_ID}'" in str(failure)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=(
        "SDK bug (temporalio 1.35.0, its Core): a legacy query task carrying new history "
        "(an activity's completion) resumed the workflow, whose next ScheduleActivityTask Core "
        "held and then sent ahead of the UpdateAccepted of the Update that arrived in the next "
        "workflow task; on replay the completion and the Update share one activation, where the "
        "SDK always runs the Update first. No workflow code replays this history."
    ),
)
async def test_a_ticket_whose_update_followed_a_racing_status_query_replays() -> None:
    """support_assign_after_query_race.json, recorded under chaos: event 20 schedules the
    ``call-tool`` lookup, event 21 accepts ``assign`` (sequenced at event 17), in one
    workflow task. Only that SDK bug fails it: any other failure is a real one."""
    results = await replay([load_history(UNREPLAYABLE / "support_assign_after_query_race.json")])
    for failure in results.replay_failures.values():
        if not (isinstance(failure, NondeterminismError) and QUERY_RACE in str(failure)):
            pytest.fail(f"fails otherwise than the SDK's ordering bug: {failure}")
    assert dict(results.replay_failures) == {}


def test_the_ticket_assigned_beside_a_lookup_result_is_recorded_update_first() -> None:
    """support_assigned_during_lookups.json (replayed with the others) has the evidence's
    shape without the racing query: ``assign`` sequenced in the workflow task that brought
    list-tools' result, and in that task the SDK wrote its acceptance before the call-tool
    lookup that result led to, the order a replay produces."""
    events = list(load_history(HISTORIES / "support_assigned_during_lookups.json").events)
    [accepted] = [
        e
        for e in events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "assign"
    ]
    sequenced_at = accepted.workflow_execution_update_accepted_event_attributes.accepted_request_sequencing_event_id
    [brought] = [e for e in events if e.event_id == sequenced_at - 1]  # what scheduled that task
    assert brought.HasField("activity_task_completed_event_attributes")  # list-tools' result
    task = [e for e in events if e.event_id >= accepted.event_id][:4]
    assert [(e.WhichOneof("attributes") or "").removesuffix("_event_attributes") for e in task] == [
        "workflow_execution_update_accepted",
        "upsert_workflow_search_attributes",
        "workflow_execution_update_completed",
        "activity_task_scheduled",
    ]
    assert task[3].activity_task_scheduled_event_attributes.activity_type.name == "temporalio.mcp.database.call-tool"
