"""``saga patches``: the patch ids the code holds (read statically) and the open runs that may
still need each one (from their histories' markers); the policy is docs/patches.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from sagaworks import registry
from sagaworks.client.patches import (
    PatchReport,
    code_patches,
    needs,
    open_runs_needing,
    patch_markers,
    patches_markdown,
)
from sagaworks.client.replay import load_history
from tests.orders import make_order, start_order, wait_for_status

HISTORIES = Path(__file__).parent / "histories"
ORDER_PATCHES = {"check-items-before-any-step", "seal-unreached-steps", "local-steps-by-default"}


def test_every_patch_of_the_code_is_found_with_its_stage_and_workflow_types() -> None:
    reports = {r.patch_id: r for r in code_patches()}
    order = {pid: r for pid, r in reports.items() if "OrderFulfillmentSaga" in r.workflow_types}
    assert set(order) == ORDER_PATCHES
    assert {r.stage for r in order.values()} == {"deprecated"}
    assert all(s.module == "sagaworks.workflows.order" for r in order.values() for s in r.sites)
    # Constants resolved in the family's module, and a patch an engine class makes on the
    # family's behalf (Approval, imported from sagaworks) attributed to the family.
    assert reports["ticket-classify-activity"].stage == "patched"
    assert reports["ticket-classify-activity"].families == ["support-ticket"]
    assert "RoutingWorkflow" in reports["approval-search-attribute"].workflow_types
    assert [s.module for s in reports["approval-search-attribute"].sites] == ["sagaworks._approval"]
    # Every workflow.patched call of the built-in workflows is found.
    calls = sum(
        text.count("workflow.patched(") + text.count("workflow.deprecate_patch(")
        for text in (p.read_text() for p in (Path(__file__).parent.parent / "workflows").glob("*.py"))
    )
    assert (
        sum(len(r.sites) for r in reports.values() if all(s.module.startswith("sagaworks.workflows") for s in r.sites))
        == calls
    )


def test_one_family_only() -> None:
    [*reports] = code_patches([registry().family("order")])
    assert {r.patch_id for r in reports} == ORDER_PATCHES


def test_markers_are_read_with_their_stage() -> None:
    first = patch_markers(load_history(HISTORIES / "order_cancelled-20261202.json"))
    assert first == dict.fromkeys(ORDER_PATCHES, False)
    second = patch_markers(load_history(HISTORIES / "order_cancelled-20261202-2.json"))
    assert second == dict.fromkeys(ORDER_PATCHES, True)
    assert patch_markers(load_history(HISTORIES / "retired" / "order_cancelled.json")) == {}


def test_the_document_pipelines_week_old_patches_are_deprecated_and_its_newest_is_not() -> None:
    """The two patches released with the first version are at stage 2; the step runner's,
    not yet released, stays at stage 1 (a release must deploy it before it moves)."""
    stages = {r.patch_id: r.stage for r in code_patches([registry().family("document")])}
    assert stages == {
        "document-finalise": "deprecated",
        "extract-chunk-groups": "deprecated",
        "document-steps": "patched",
    }
    stage_two = patch_markers(load_history(HISTORIES / "document_grouped_completed-20261202-2.json"))
    assert stage_two == {"document-finalise": True, "extract-chunk-groups": True, "document-steps": False}
    assert patch_markers(load_history(HISTORIES / "retired" / "document_completed.json")) == {}


def test_who_may_still_need_a_patch() -> None:
    patched = PatchReport(patch_id="p", stage="patched", sites=[], workflow_types=[], families=[])
    deprecated = patched.model_copy(update={"stage": "deprecated"})
    assert needs(patched, {}) is not None  # before the patch, or not at the call yet
    assert needs(patched, {"p": False}) is None and needs(patched, {"p": True}) is None
    assert needs(deprecated, {"p": False}) is not None  # removing the call would break it
    assert needs(deprecated, {"p": True}) is None and needs(deprecated, {}) is None


async def test_open_runs_that_may_need_each_patch(dev_client: Client, order_worker: Worker, task_queue: str) -> None:
    """A paused order is open with the deprecated markers of its first steps: no patch of the
    order saga needs it; as a patched id, the seal it has not reached would list it."""
    handle = await start_order(dev_client, task_queue, make_order(step_delay_seconds=1))
    await wait_for_status(handle, lambda s: s.done >= 1)
    await handle.signal("pause")
    try:
        reports = code_patches([registry().family("order")])
        still_patched = reports[0].model_copy(update={"patch_id": "seal-unreached-steps", "stage": "patched"})
        await open_runs_needing(dev_client, [*reports, still_patched])
        for report in reports:
            assert handle.id not in [r.workflow_id for r in report.open_runs or []], report.patch_id
            assert report.next_step.startswith("no open run holds"), report.next_step
        [run] = [r for r in still_patched.open_runs or [] if r.workflow_id == handle.id]
        assert run.run_id == handle.result_run_id and "has not reached the call" in run.why
        assert handle.id in patches_markdown([still_patched])
    finally:
        await handle.cancel()


def test_the_command_lists_the_patches_offline_as_json() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "saga"), "patches", "--family", "order", "--offline", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["patch_id"] for r in rows} == ORDER_PATCHES and all(r["open_runs"] is None for r in rows)
