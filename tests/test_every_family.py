"""Tests generated from the registry, not written per family: every family that declares a
property (its workflow on the step runner, ``Family.llm_steps``) is run through the same
checks, so a family that gains one is tested from the moment it is registered.

- On the step runner: the family's demo runs, restarts from its middle step (``saga
  restart ID --from STEP``), and the new run's history schedules nothing for the steps
  before that one and the step itself again; the new run completes.
- Calling the model through the LLM gateway: its demo completes on its fallback while the
  provider answers every call with a 5xx, saying so; and 50 runs across these families at
  once keep within the provider's own requests and tokens per window.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from sagaworks import LLM, DemoRun, Family, LLMBudget, LLMSettings, StepWorkflow, registry
from sagaworks.activities.db import Database
from sagaworks.client.demo import progress_at, send_demo_update
from sagaworks.client.postmortem import restart_run
from sagaworks.client.restart import declared_steps, handed_over_to, source_steps
from sagaworks.client.runs import Outcome, run_outcome, start_run, to_jsonable
from sagaworks.client.stats import local_activity_marker
from sagaworks.client.trace import TraceStep, trace_run
from sagaworks.worker import running_worker
from tests.chaos import unavailable_service
from tests.fake_chat_server import Limits, echo, failing, fake_chat_server, openai_settings

FAMILIES = list(registry())


def on_step_runner(fam: Family[Any]) -> bool:
    return isinstance(fam.workflow, type) and issubclass(fam.workflow, StepWorkflow)


def restarts_from_steps(fam: Family[Any]) -> bool:
    workflow = fam.workflow
    return isinstance(workflow, type) and issubclass(workflow, StepWorkflow) and workflow.restarts_from_steps


STEP_FAMILIES = [fam for fam in FAMILIES if restarts_from_steps(fam)]
"""The families whose runs restart from a step (a fan-out on the runner for its status, pause
and cancel only says ``restarts_from_steps = False``)."""
LLM_FAMILIES = [fam for fam in FAMILIES if fam.llm_steps]


def _ids(fam: Family[Any]) -> str:
    return fam.name


def usable_demo(fam: Family[Any]) -> DemoRun | None:
    """The family's first demo run that ends well: one expected to complete, or a long-lived
    one (RUNNING) its demo drives to a step; None when it has none."""
    return next((d for d in fam.demo if d.expect in ("COMPLETED", "RUNNING") and not d.stops_agent), None)


def runnable(fam: Family[Any]) -> DemoRun:
    """``fam``'s usable demo, or skip the test saying why it cannot run here."""
    if reason := unavailable_service(fam):
        pytest.skip(f"{fam.name}: {reason}")
    demo = usable_demo(fam)
    if demo is None:
        pytest.skip(f"{fam.name} declares no demo run that completes: nothing to run it with")
    return demo


def prerequisites(fam: Family[Any]) -> list[Family[Any]]:
    """The registered families whose demos must run before ``fam``'s (``demo_after``,
    transitively), in the order to run them."""
    found = registry()
    ordered: list[Family[Any]] = []

    def visit(current: Family[Any], path: tuple[str, ...]) -> None:
        for name in current.demo_after:
            if name in found.names and name not in path:
                before = found.family(name)
                visit(before, (*path, name))
                if before not in ordered and usable_demo(before) is not None:
                    ordered.append(before)

    visit(fam, (fam.name,))
    return ordered


def served(*families: Family[Any]) -> list[Family[Any]]:
    """The families a worker must serve to run these and what their demos need first."""
    wanted: list[Family[Any]] = []
    for fam in families:
        for needed in (*prerequisites(fam), fam):
            if needed not in wanted:
                wanted.append(needed)
    return wanted


async def drive(handle: WorkflowHandle[Any, Any], demo: DemoRun) -> Outcome:
    """Send the demo's updates and wait for the run's end; a long-lived run (RUNNING) is
    waited for until its status shows the demo's step, and is then still RUNNING."""
    for update in demo.updates:
        await send_demo_update(handle, update)
    if demo.expect != "RUNNING":
        return await asyncio.wait_for(run_outcome(handle), 300)
    progress = await progress_at(handle, demo.shown_at, patience=120)
    step = getattr(progress, "current_step", None) or str(progress)
    assert demo.shown_at in step, f"{handle.id} never reached {demo.shown_at!r}: {step!r}"
    return Outcome(handle.id, "RUNNING", result=to_jsonable(progress))


async def start_demo(
    client: Client, task_queue: str, fam: Family[Any], demo: DemoRun, *, workflow_id: str | None = None
) -> WorkflowHandle[Any, Any]:
    """Start ``demo`` as ``saga demo`` does (its rerun field made fresh); under
    ``workflow_id`` when given: runs of the same sample at once, which a family whose id
    derives from its input (one news digest of a name at a time) would otherwise refuse."""
    arg = fam.sample_input(demo.sample, uuid.uuid4().hex[:8])
    if workflow_id is None:
        return await start_run(client, fam, arg, task_queue=task_queue)
    fam.check_allowed(arg)
    return await client.start_workflow(fam.workflow_type, arg, id=workflow_id, task_queue=task_queue)


async def run_prerequisites(client: Client, task_queue: str, *families: Family[Any]) -> None:
    """Run, one after the other, the demos the families' demos need first (stored documents)."""
    done: set[str] = set()
    for fam in families:
        for before in prerequisites(fam):
            if before.name not in done:
                demo = usable_demo(before)
                assert demo is not None
                outcome = await drive(await start_demo(client, task_queue, before, demo), demo)
                assert outcome.status == demo.expect, f"{before.name}'s demo (needed by {fam.name}): {outcome}"
                done.add(before.name)


def checked(fam: Family[Any], demo: DemoRun, outcome: Outcome) -> None:
    """Assert the run ended as its demo expects, with what its result must contain."""
    assert outcome.status == demo.expect, f"{fam.name} {demo.sample}: {outcome.status} ({outcome.failure})"
    if outcome.status == "COMPLETED":
        missing = demo.missing_from(to_jsonable(outcome.result))
        assert not missing, f"{fam.name} {demo.sample} completed without {demo.result_means}: {missing}"


async def step_executions(client: Client, handle: WorkflowHandle[Any, Any]) -> Counter[str]:
    """How many times the run executed each step, by the summary each activity was
    scheduled with (the step's name) and each local activity's marker keeps."""
    counts: Counter[str] = Counter()
    for event in (await handle.fetch_history()).events:
        if not (event.HasField("activity_task_scheduled_event_attributes") or local_activity_marker(event) is not None):
            continue
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            [summary] = await client.data_converter.decode([event.user_metadata.summary])
            counts[str(summary)] += 1
    return counts


async def close_long_lived(handle: WorkflowHandle[Any, Any], outcome: Outcome) -> None:
    """End a long-lived run the demo leaves open (terminated: nothing to compensate)."""
    if outcome.status == "RUNNING":
        await handle.terminate("the test has seen what it needed")


# --- restart from the middle step -------------------------------------------------------


def test_every_family_is_on_the_step_runner() -> None:
    """The families not on the step runner yet, named (a skip while any remain)."""
    remaining = [fam.name for fam in FAMILIES if not on_step_runner(fam)]
    unavailable = [u.name for u in registry().unavailable]
    if unavailable:
        print(f"not installed here, so not checked: {', '.join(unavailable)}")
    if remaining:
        pytest.skip(f"not on the step runner yet ({len(remaining)} of {len(FAMILIES)}): {', '.join(remaining)}")


@pytest.mark.parametrize("fam", STEP_FAMILIES, ids=_ids)
async def test_a_demo_run_restarted_from_its_middle_step_reruns_that_step_and_none_before_it(
    fam: Family[Any], dev_client: Client, db: Database, task_queue: str
) -> None:
    demo = runnable(fam)
    offline = LLM(db, settings=LLMSettings())
    async with running_worker(
        dev_client, db, task_queue=task_queue, activity_threads=8, settings=[offline], families=served(fam)
    ):
        await run_prerequisites(dev_client, task_queue, fam)
        handle = await start_demo(dev_client, task_queue, fam, demo)
        outcome = await drive(handle, demo)
        checked(fam, demo, outcome)
        await close_long_lived(handle, outcome)
        source = dev_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        if (heir := handed_over_to(await source.fetch_history(), fam.workflow_type)) is not None:
            # Its steps ran in the run it handed its input to (a document named by a relative
            # path); the restart below, of the run the test started, follows it there.
            source = dev_client.get_workflow_handle(heir[0], run_id=heir[1])
        # The steps as the restart reads them: the ones the run declares (its status's
        # plan), else the ones its history shows it reached.
        steps = await declared_steps(source) or (await source_steps(dev_client, await source.fetch_history())).order
        assert steps, (
            f"{fam.name}: neither its status nor its history names a step (are its steps run through self.steps?)"
        )
        middle = steps[len(steps) // 2]
        restarted = await restart_run(dev_client, handle.id, middle)
        again = dev_client.get_workflow_handle(restarted.id, run_id=restarted.result_run_id)
        outcome = await drive(again, demo)
        status = await again.query("status")
        await close_long_lived(again, outcome)
    assert outcome.status == demo.expect, f"{fam.name} restarted from {middle}: {outcome.status} ({outcome.failure})"
    counts = await step_executions(dev_client, again)
    earlier = steps[: steps.index(middle)]
    print(f"{fam.name}: steps {steps}; restarted from {middle}; the new run executed {dict(counts)}")
    assert {step: counts[step] for step in earlier} == dict.fromkeys(earlier, 0)
    # A step run as workflow code (Steps.run_here: several activities or children) schedules
    # nothing under its own name; its timing says it ran, not reused.
    timed = [t for t in (status.get("steps") or []) if t["step"] == middle]
    assert counts[middle] >= 1 or (timed and not timed[0]["reused"])


# --- the LLM gateway ----------------------------------------------------------------------


def fallbacks_in(data: Any) -> Iterator[str]:
    """Every reason a ``fallback`` or ``fallbacks`` field of ``data`` (JSON) gives, and the
    ``error`` of each branch outcome (``sagaworks.BranchOutcome``) that fell back."""
    if isinstance(data, dict):
        if data.get("status") == "fallback" and isinstance(data.get("error"), str) and data["error"]:
            yield data["error"]
        for key, value in data.items():
            if key in ("fallback", "fallbacks"):
                values = value if isinstance(value, list) else [value]
                yield from (v for v in values if isinstance(v, str) and v)
            else:
                yield from fallbacks_in(value)
    elif isinstance(data, list):
        for item in data:
            yield from fallbacks_in(item)


def llm_steps_of(fam: Family[Any], steps: list[TraceStep]) -> Iterator[TraceStep]:
    """The traced steps (of the run and its children) that ``fam`` declares call the model."""
    for step in steps:
        if step.kind in ("activity", "local_activity") and (
            step.summary in fam.llm_steps or step.name in fam.llm_steps
        ):
            yield step
        if step.child is not None:
            yield from llm_steps_of(fam, step.child.steps)


def test_the_families_that_call_the_model_through_the_gateway() -> None:
    """Which families the gateway tests below cover (none: those tests have nothing to run)."""
    if not LLM_FAMILIES:
        pytest.skip("no registered family declares llm_steps")
    print("declare llm_steps: " + ", ".join(f"{fam.name} {list(fam.llm_steps)}" for fam in LLM_FAMILIES))


@pytest.mark.parametrize("fam", LLM_FAMILIES, ids=_ids)
async def test_with_every_model_call_failing_the_demo_completes_on_its_fallback_and_says_so(
    fam: Family[Any], dev_client: Client, db: Database, task_queue: str
) -> None:
    demo = runnable(fam)
    # The runs this demo needs first (the documents a blog cites) take no part: on a worker
    # with no model, so their calls neither reach the server nor open the breaker before the
    # family's own calls do.
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, families=served(fam)):
        await run_prerequisites(dev_client, task_queue, fam)
    with fake_chat_server(failing(503)) as server:
        gateway = LLM(db, settings=openai_settings(server), budget=LLMBudget(requests=0, tokens=0))
        async with running_worker(
            dev_client, db, task_queue=task_queue, activity_threads=8, settings=[gateway], families=served(fam)
        ):
            before = len(server.requests)
            handle = await start_demo(dev_client, task_queue, fam, demo)
            outcome = await drive(handle, demo)
            await close_long_lived(handle, outcome)
            trace = await trace_run(dev_client, handle.id, run_id=handle.result_run_id, payloads=True)
    checked(fam, demo, outcome)
    # The family's calls reached the provider the worker's gateway names.
    assert len(server.requests) > before, f"{fam.name} asked the provider nothing: is the worker's LLM its gateway?"
    steps = list(llm_steps_of(fam, trace.steps))
    assert steps, f"{fam.name}: no step of {list(fam.llm_steps)} ran (by step name or activity type)"
    assert all(step.outcome == "completed" for step in steps), [(s.name, s.outcome, s.error) for s in steps]
    reasons = [*fallbacks_in(outcome.result), *(r for step in steps for r in fallbacks_in(step.result))]
    assert reasons, f"{fam.name}: neither its result nor its steps {list(fam.llm_steps)} say a fallback ran"
    print(f"{fam.name}: {len(server.requests) - before} calls refused; fallbacks: {sorted(set(reasons))[:3]}")
    # One at least says why in the gateway's words: the provider's 5xx, or the breaker
    # those opened (a family may report fallbacks of other kinds beside them, and name
    # the part that fell back first: "chunk 0: breaker llm open: ...").
    assert any("HTTP 503" in reason or "breaker llm open" in reason for reason in reasons), set(reasons)


RUNS_AT_ONCE = 50

ONE_RUN_PER_INPUT = frozenset({"document"})
"""Families whose run, whatever id it was started under, hands its input to the run under
the input's own id (a document's, from its resolved path), which refuses a second one at
once (DocumentBusy): their load runs go one after another, each later one reusing what the
first stored, among the other families' runs at once."""


async def test_fifty_runs_of_the_llm_families_at_once_keep_within_the_providers_requests_and_tokens(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    # Every family that can run here takes part; one without a usable demo (or whose
    # service is missing) is left out, not the whole test.
    families = [fam for fam in LLM_FAMILIES if not unavailable_service(fam) and usable_demo(fam)]
    if not families:
        pytest.skip("no registered family declares llm_steps and has a demo run that completes")
    demos = {fam.name: runnable(fam) for fam in families}
    # The provider's own limits, which it enforces with 429 + Retry-After, are the
    # gateway's budget: the gateway must keep within them so the provider refuses nothing.
    limits = Limits(requests=10, tokens=1200, window_seconds=1.0)
    budget = LLMBudget(requests=limits.requests, tokens=limits.tokens, window_seconds=limits.window_seconds)
    # The runs the demos need first (the documents a blog cites) run on a worker with no
    # model: they are not part of the load, and hundreds of chunks would take minutes.
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=8, families=served(*families)):
        await run_prerequisites(dev_client, task_queue, *families)
    with fake_chat_server(echo, limits) as server:
        gateway = LLM(db, settings=openai_settings(server), budget=budget)
        async with running_worker(
            dev_client,
            db,
            task_queue=task_queue,
            activity_threads=16,
            settings=[gateway],
            families=served(*families),
        ):
            before = len(server.requests)
            runs = [families[n % len(families)] for n in range(RUNS_AT_ONCE)]
            one_at_a_time = {name: asyncio.Lock() for name in ONE_RUN_PER_INPUT}

            async def load_run(n: int, fam: Family[Any]) -> Outcome:
                async with one_at_a_time.get(fam.name) or contextlib.nullcontext():
                    handle = await start_demo(
                        dev_client,
                        task_queue,
                        fam,
                        demos[fam.name],
                        workflow_id=f"{fam.name}-load-{n}-{uuid.uuid4().hex[:8]}",
                    )
                    outcome = await drive(handle, demos[fam.name])
                await close_long_lived(handle, outcome)
                return outcome

            outcomes = await asyncio.gather(*(load_run(n, fam) for n, fam in enumerate(runs)))
    for fam, outcome in zip(runs, outcomes, strict=True):
        checked(fam, demos[fam.name], outcome)
    most_requests, most_tokens = server.busiest_window()
    print(
        f"{RUNS_AT_ONCE} runs of {', '.join(sorted({fam.name for fam in runs}))}: "
        f"{len(server.requests) - before} requests, {len(server.accepted)} accepted, {len(server.refused)} refused; "
        f"at most {most_requests} requests and {most_tokens} tokens in a window of {limits.window_seconds:g} s "
        f"(limits {limits.requests} and {limits.tokens})"
    )
    # The calls needed more than one window: the budget spread them.
    assert len(server.accepted) > limits.requests
    # The server accepts only what fits its limits, so the busiest window proves little on
    # its own: what proves the gateway kept the budget is that nothing was refused.
    assert most_requests <= limits.requests and most_tokens <= limits.tokens
    assert not server.refused, (
        f"the provider refused {len(server.refused)} calls with 429: the gateway passed its limits"
    )
