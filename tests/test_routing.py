"""The routing family: tiers by rules, admin approval by Update (validators, the official
CLI, saga's helper), the deadline as a durable timer and both escalations."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from sagaworks import ApprovalDecision, registry, reported_error
from sagaworks.activities.db import Database
from sagaworks.activities.routing import RoutedRequestRow
from sagaworks.client.approvals import DecisionRefused, decide
from sagaworks.contracts.routing import RoutingInput, RoutingResult
from sagaworks.worker import running_worker
from sagaworks.workflows.routing import RoutingWorkflow
from tests.approval_probe import wait_for_approval_state
from tests.official_cli import update_with_official_cli

ROUTING = registry().family("routing")


def _request(text: str, **fields: object) -> RoutingInput:
    return RoutingInput(request_id=f"req-{uuid.uuid4().hex[:8]}", requester="dana", text=text, **fields)  # type: ignore[arg-type]  # each test passes RoutingInput's own fields


async def _start(
    client: Client, task_queue: str, request: RoutingInput
) -> WorkflowHandle[RoutingWorkflow, RoutingResult]:
    return await client.start_workflow(
        RoutingWorkflow.run, request, id=ROUTING.workflow_id(request), task_queue=task_queue
    )


def _row(db: Database, request_id: str) -> RoutedRequestRow:
    with db.transaction() as session:
        return session.scalars(select(RoutedRequestRow).where(RoutedRequestRow.request_id == request_id)).one()


async def _pending(handle: WorkflowHandle) -> None:
    # The search attribute, not the status query: a query answered just before an Update
    # can race the Update's acceptance (DESIGN.md, State, control and observability).
    await wait_for_approval_state(handle, "pending")


@pytest.mark.parametrize(
    ("text", "tier", "hours"),
    [("We are on the Pro Plan and need priority help", "premium", 4), ("Where is my invoice?", "standard", 48)],
)
async def test_premium_and_standard_requests_go_straight_to_their_handler(
    dev_client: Client, db: Database, task_queue: str, text: str, tier: str, hours: int
) -> None:
    request = _request(text)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        result = await asyncio.wait_for((await _start(dev_client, task_queue, request)).result(), 60)
    assert (result.classification.tier, result.approval, result.escalated) == (tier, "not-required", False)
    assert result.handled is not None and result.handled.response_hours == hours
    row = _row(db, request.request_id)
    assert (row.tier, row.outcome, row.response_hours) == (tier, "handled", hours)


async def test_validators_refuse_bad_decisions_and_the_official_cli_approves(
    dev_client: Client, dev_address: str, db: Database, task_queue: str
) -> None:
    request = _request("Please give me admin access to the billing project", approvers=["alice", "bob"])
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(dev_client, task_queue, request)
        await _pending(handle)
        refusals = {
            "no name": ("approve", " ", None),
            "outsider": ("approve", "mallory", None),
            "no reason": ("reject", "alice", "  "),
        }
        for label, (decision, approver, reason) in refusals.items():
            with pytest.raises(DecisionRefused) as refused:
                await decide(dev_client, handle.id, decision, approver, reason)  # type: ignore[arg-type]  # refusals include decisions outside the literal, on purpose
            assert refused.value.args[0].split(":")[0] in ("approver", "reason"), label
        # A refusal is final (non-retryable) for any client.
        with pytest.raises(WorkflowUpdateFailedError) as refused_update:
            await handle.execute_update("approve", ApprovalDecision(approver="mallory"))
        cause = refused_update.value.cause
        assert isinstance(cause, ApplicationError) and cause.non_retryable and cause.type == "ApprovalRefused"

        # The official CLI shows a refusal as final, in the validator's words.
        refused_by_cli = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "approve", {"approver": "mallory"}
        )
        assert refused_by_cli.returncode != 0
        assert "mallory is not one of alice, bob (type: ApprovalRefused, retryable: false)" in refused_by_cli.stderr
        approved = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "approve", {"approver": "bob"}
        )
        assert approved.returncode == 0, approved.stderr
        assert "decision:approved" in approved.stdout
        result = await asyncio.wait_for(handle.result(), 60)
        # Nothing is pending any more: a late decision is refused, not recorded.
        with pytest.raises(Exception, match="completed|no approval"):
            await decide(dev_client, handle.id, "reject", "alice", "too late")

    assert (result.approval, result.decided_by, result.escalated) == ("approved", "bob", False)
    assert result.handled is not None and "approved by bob" in result.handled.response
    assert _row(db, request.request_id).decided_by == "bob"
    # Refused updates leave no trace in the history: one accepted update only.
    events = (await handle.fetch_history()).events
    assert sum(e.HasField("workflow_execution_update_accepted_event_attributes") for e in events) == 1


async def test_a_rejection_records_its_reason(dev_client: Client, db: Database, task_queue: str) -> None:
    request = _request("Make me an administrator of every project")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(dev_client, task_queue, request)
        await _pending(handle)
        answer = await decide(dev_client, handle.id, "reject", "alice", "least privilege: ask per project")
        result = await asyncio.wait_for(handle.result(), 60)
    assert (answer.decision, answer.approver) == ("rejected", "alice")
    assert (result.approval, result.decided_by, result.reason, result.handled) == (
        "rejected",
        "alice",
        "least privilege: ask per project",
        None,
    )
    row = _row(db, request.request_id)
    assert (row.outcome, row.decided_by, row.response) == ("rejected", "alice", "least privilege: ask per project")


async def test_no_decision_within_the_deadline_rejects_automatically(
    time_skipping_env: WorkflowEnvironment, db: Database, task_queue: str
) -> None:
    client = time_skipping_env.client
    request = _request("sudo on the production database, please")  # default deadline: 24 h
    async with running_worker(client, db, task_queue=task_queue, activity_threads=2):
        result = await (await _start(client, task_queue, request)).result()
    assert (result.approval, result.escalated, result.handled) == ("rejected", True, None)
    assert result.escalation == "no decision within 24 h: rejected automatically"
    assert _row(db, request.request_id).decided_by == "escalation"


async def test_escalation_to_a_second_group_which_then_decides(
    time_skipping_env: WorkflowEnvironment, db: Database, task_queue: str
) -> None:
    client = time_skipping_env.client
    request = _request(
        "root access to the build servers",
        approvers=["alice"],
        escalation="second-group",
        escalation_approvers=["cto"],
        deadline_seconds=3600,
    )
    async with running_worker(client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(client, task_queue, request)
        await _pending(handle)
        await time_skipping_env.sleep(3601)  # past the first group's deadline
        await wait_for_approval_state(handle, "escalated")
        status = await handle.query(RoutingWorkflow.status)
        assert (status.approvers, status.escalation) == (["cto"], "no decision within 1 h: escalated to cto")
        with pytest.raises(DecisionRefused, match="alice is not one of cto"):
            await decide(client, handle.id, "approve", "alice")
        await decide(client, handle.id, "approve", "cto")
        result = await handle.result()
    assert (result.approval, result.decided_by, result.escalated) == ("approved", "cto", True)
    assert result.escalation == "no decision within 1 h: escalated to cto"


async def test_cancel_while_awaiting_approval(dev_client: Client, db: Database, task_queue: str) -> None:
    request = _request("admin rights for the new intern")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(dev_client, task_queue, request)
        await _pending(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_the_llm_classifier_decides_the_tier_when_asked(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_chat_server import completion, fake_chat_server

    def respond(_body, _index):
        return 200, {}, completion('```json\n{"tier": "premium", "reason": "mentions a paid plan"}\n```')

    request = _request("Our team plan is slow today, please look", classifier="llm")
    with fake_chat_server(respond) as server:
        monkeypatch.setenv("GROQ_API_KEY", "test-key")
        monkeypatch.setenv("GROQ_BASE_URL", server.base_url)
        monkeypatch.setenv("GROQ_MODEL", "test-model")
        monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
            result = await asyncio.wait_for((await _start(dev_client, task_queue, request)).result(), 60)
        prompt = server.prompt_of(0)
    assert request.text in prompt
    assert (result.classification.tier, result.classification.classifier) == ("premium", "groq:test-model")
    assert result.classification.fallback is None
    assert result.classification.matched == ["mentions a paid plan"]


async def test_asking_for_the_llm_without_one_configured_names_the_field(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(dev_client, task_queue, _request("hello", classifier="llm"))
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)
    reported = reported_error(failure.value.cause) if failure.value.cause is not None else None
    assert isinstance(reported, ApplicationError)
    assert reported.message.startswith("classifier: no LLM is configured")


async def test_an_unusable_model_answer_falls_back_to_the_rules_saying_so(
    dev_client: Client, db: Database, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_chat_server import completion, fake_chat_server

    request = _request("We are on the Pro Plan and need priority help", classifier="llm")
    with fake_chat_server(lambda _body, _index: (200, {}, completion("premium, I think"))) as server:
        monkeypatch.setenv("GROQ_API_KEY", "test-key")
        monkeypatch.setenv("GROQ_BASE_URL", server.base_url)
        monkeypatch.setenv("GROQ_MODEL", "test-model")
        monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
            handle = await _start(dev_client, task_queue, request)
            result = await asyncio.wait_for(handle.result(), 60)
            status = await handle.query(RoutingWorkflow.status)
        asked = len(server.requests)
    assert asked == 1  # the rules are the declared answer to an unusable one: not asked again
    assert (result.classification.tier, result.classification.classifier) == ("premium", "rules")
    assert result.classification.fallback is not None and "answer is unusable" in result.classification.fallback
    assert [t.outcome for t in status.steps] == ["premium by rules (fallback)", "premium: 4 h"]


async def test_a_restart_from_handle_reuses_the_classification(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    from sagaworks.client.postmortem import restart_run
    from tests.test_steps_restart import executed

    request = _request("We are on the Pro Plan and need priority help")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=2):
        handle = await _start(dev_client, task_queue, request)
        await asyncio.wait_for(handle.result(), 60)
        restarted = await restart_run(dev_client, handle.id, "handle")
        result = RoutingResult.model_validate(await asyncio.wait_for(restarted.result(), 60))
        status = await restarted.query(RoutingWorkflow.status)
    assert result.classification.tier == "premium" and result.handled is not None
    assert await executed(restarted) == {"handle_premium": 1}  # classify_request not scheduled again
    assert [(t.step, t.reused) for t in status.steps] == [("classify", True), ("handle", False)]
    assert status.restarted_from == f"{handle.id}/{handle.result_run_id}"
