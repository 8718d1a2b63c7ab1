"""The support-ticket family: routing, escalation, SLA, Updates with validators, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from sagaworks import LLM, BreakerConfig, Breakers, Database, LLMBudget, LLMSettings
from sagaworks.activities.mcp_servers import mcp_plugins
from sagaworks.activities.support_ticket import TicketClassifier, notify_escalation
from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.client.devserver import register_search_attributes
from sagaworks.client.devserver import test_server_binary as time_skipping_binary  # not a test: pytest collects test_*
from sagaworks.client.postmortem import restart_run
from sagaworks.client.tickets import ticket_query
from sagaworks.contracts.support import (
    AssignRequest,
    Comment,
    ReopenRequest,
    ResolveRequest,
    TicketInput,
    TicketStatus,
    TicketView,
    classify,
)
from sagaworks.policies import llm_task_queue
from sagaworks.workflows.support_ticket import SupportTicket
from tests.fake_chat_server import FakeChatServer, Reply, api_error, completion, fake_chat_server, retry_delay_of
from tests.official_cli import update_with_official_cli

NODE = shutil.which("node")


@pytest_asyncio.fixture(scope="module")
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own, with the tickets' search attributes.

    Not the session's: workflows other tests leave behind on a shared server made its
    time-skipping sleep fail (an HTTP/2 error from ``unlock_time_skipping_with_sleep``)."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_binary(), data_converter=DATA_CONVERTER
    ) as env:
        await register_search_attributes(env.client)
        yield env


def ticket(subject: str, body: str = "", email: str = "grace@example.com", **fields: Any) -> TicketInput:
    return TicketInput(
        ticket_id=f"T-{uuid.uuid4().hex[:8]}", customer_email=email, subject=subject, body=body, **fields
    )


@contextlib.asynccontextmanager
async def worker(
    client: Client, task_queue: str, classifier: TicketClassifier | None = None, llm_slots: int = 2
) -> AsyncIterator[None]:
    """The ticket's workflow and MCP calls, and its classification on the LLM task queue
    (the rules unless ``classifier`` says otherwise) with ``llm_slots`` slots."""
    async with (
        Worker(
            client,
            task_queue=task_queue,
            workflows=[SupportTicket],
            activities=[notify_escalation],
            activity_executor=_executor,
            plugins=mcp_plugins(),
        ),
        Worker(
            client,
            task_queue=llm_task_queue(task_queue),
            activities=[(classifier or TicketClassifier()).classify_ticket],
            activity_executor=_executor,
            max_concurrent_activities=llm_slots,
        ),
    ):
        yield


from concurrent.futures import ThreadPoolExecutor  # noqa: E402

_executor = ThreadPoolExecutor(max_workers=6)


async def start(
    client: Client, task_queue: str, request: TicketInput, **options: Any
) -> WorkflowHandle[Any, TicketView]:
    """Start the ticket's run; ``options`` go to ``start_workflow`` (a signal sent with the start)."""
    return await client.start_workflow(
        SupportTicket.run, request, id=f"ticket-{request.ticket_id}", task_queue=task_queue, **options
    )


async def until(handle: WorkflowHandle[Any, Any], check, what: str):
    for _ in range(600):
        status = await handle.query(SupportTicket.status)
        if status.ticket is not None and check(status.ticket):
            return status.ticket
        await asyncio.sleep(0.1)
    raise AssertionError(f"the ticket never reached: {what}; last: {status}")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I cannot login, my account is locked", "customer_service"),
        ("The API returns an error and the dashboard crash", "technical_support"),
        ("What is the price of the enterprise plan? Can we get a demo?", "sales_inquiry"),
        ("I need a report with metrics and a trend forecast", "data_analysis"),
        ("Hello there", "general_query"),
    ],
)
def test_the_keyword_rules_classify_each_type(text: str, kind: str) -> None:
    assert classify(text).ticket_type == kind


def test_urgency_and_triggers() -> None:
    found = classify("URGENT: this is unacceptable, get me your manager")
    assert found.priority == "CRITICAL" and found.escalation_triggers == ["manager", "unacceptable"]


@pytest.mark.skipif(NODE is None, reason="node is not installed: no filesystem MCP server")
@pytest.mark.parametrize(
    ("subject", "kind", "lookups"),
    [
        ("Refund for my subscription", "customer_service", ["customer tier"]),
        ("API timeout errors", "technical_support", ["customer tier", "recent log files"]),
        ("Pricing of the team plan", "sales_inquiry", ["customer tier", "plans and prices"]),
        ("Monthly analytics report", "data_analysis", ["customer tier", "recent incidents"]),
        ("Hello", "general_query", ["customer tier"]),
    ],
)
async def test_each_type_is_routed_to_its_handler(dev_client: Client, task_queue: str, subject, kind, lookups) -> None:
    async with worker(dev_client, task_queue):
        handle = await start(dev_client, task_queue, ticket(subject))
        view = await until(handle, lambda t: len(t.lookups) == len(lookups), "lookups done")
        await handle.terminate("test over")
    assert view.ticket_type == kind and view.routing_path[:3] == ["classifier", kind, "lookups"]
    assert [lookup.what for lookup in view.lookups] == lookups
    assert all(lookup.error is None for lookup in view.lookups), view.lookups
    assert view.customer_tier == "standard"
    extra = {"technical_support": "api-gateway.log", "sales_inquiry": "enterprise", "data_analysis": "502 errors"}
    if kind in extra:
        assert extra[kind] in view.lookups[1].result


async def test_trigger_words_escalate_at_once(dev_client: Client, task_queue: str) -> None:
    async with worker(dev_client, task_queue):
        handle = await start(dev_client, task_queue, ticket("This is unacceptable", "I want a manager"))
        view = await until(handle, lambda t: t.escalations, "escalated")
        described = await handle.describe()
        await handle.terminate("test over")
    [escalation] = view.escalations
    assert escalation.reason == "trigger words: manager, unacceptable"
    assert (escalation.from_priority, escalation.to_priority, escalation.notified) == ("LOW", "MEDIUM", "log")
    assert described.typed_search_attributes is not None
    attributes = {pair.key.name: pair.value for pair in described.typed_search_attributes}
    assert attributes["TicketPriority"] == "MEDIUM" and attributes["TicketState"] == "open"


async def test_a_missed_sla_escalates(skipping: WorkflowEnvironment, task_queue: str) -> None:
    client = skipping.client
    async with worker(client, task_queue):
        handle = await start(client, task_queue, ticket("Important: billing question", email="alan@example.com"))
        await until(handle, lambda t: t.lookups, "looked up")
        await skipping.sleep(timedelta(minutes=61))  # HIGH: first response within 1 h
        view = await until(handle, lambda t: t.escalations, "escalated")
        assert view.escalations[0].reason.startswith("no response within the HIGH SLA")
        assert view.priority == "CRITICAL"
        await skipping.sleep(timedelta(minutes=16))  # CRITICAL: 15 min
        view = await until(handle, lambda t: len(t.escalations) == 2, "escalated twice")
        await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
        await skipping.sleep(timedelta(days=1))
        view = await until(handle, lambda t: t.state == "assigned", "assigned")
        assert len(view.escalations) == 2, "an assigned ticket must not escalate again"
        await handle.terminate("test over")


async def test_assign_resolve_reopen_and_validators(dev_client: Client, task_queue: str) -> None:
    async with worker(dev_client, task_queue):
        handle = await start(dev_client, task_queue, ticket("Password reset"))
        await until(handle, lambda t: t.lookups, "looked up")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="done"))
        assert "only an assigned ticket can be resolved (assign it first)" in str(refused.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(SupportTicket.reopen, ReopenRequest(reason="again"))
        assert "only a resolved ticket can be reopened" in str(refused.value.cause)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.non_retryable and cause.type == "UpdateRefused"

        view = await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
        assert (view.state, view.assignee) == ("assigned", "dana")
        await handle.signal(SupportTicket.comment, Comment(author="dana", text="sent a reset link"))
        view = await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="reset link sent"))
        assert view.state == "resolved" and view.comments[0].text == "sent a reset link"
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(SupportTicket.assign, AssignRequest(agent="eve"))
        assert "ticket is resolved: it cannot be assigned; reopen it first" in str(refused.value.cause)
        assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.non_retryable

        view = await handle.execute_update(SupportTicket.reopen, ReopenRequest(reason="link expired"))
        assert (view.state, view.reopened) == ("assigned", 1)
        attributes = {p.key.name: p.value for p in (await handle.describe()).typed_search_attributes}
        assert attributes["TicketState"] == "assigned" and attributes["TicketAssignee"] == "dana"
        await handle.terminate("test over")


async def test_updates_through_the_official_cli(dev_client: Client, dev_address: str, task_queue: str) -> None:
    async with worker(dev_client, task_queue):
        handle = await start(dev_client, task_queue, ticket("Invoice question"))
        await until(handle, lambda t: t.lookups, "looked up")

        refused = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "resolve", {"resolution": "x"}
        )
        shown = refused.stderr + refused.stdout
        # A refusal is final: the CLI must not present it as a fault a retry clears.
        assert (
            refused.returncode != 0
            and "only an assigned ticket can be resolved" in shown
            and "retryable: false" in shown
        ), shown
        assigned = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "assign", {"agent": "dana"}
        )
        assert assigned.returncode == 0, assigned.stderr
        resolved = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "resolve", {"resolution": "explained the invoice"}
        )
        assert resolved.returncode == 0, resolved.stderr and "explained the invoice" in resolved.stdout
        reopened = await asyncio.to_thread(
            update_with_official_cli, dev_address, handle.id, "reopen", {"reason": "still unclear"}
        )
        assert reopened.returncode == 0, reopened.stderr
        view = (await handle.query(SupportTicket.status)).ticket
        await handle.terminate("test over")
    assert view is not None and (view.state, view.assignee, view.reopened) == ("assigned", "dana", 1)


async def test_reopen_window_closes_the_ticket(skipping: WorkflowEnvironment, task_queue: str) -> None:
    client = skipping.client
    async with worker(client, task_queue):
        handle = await start(client, task_queue, ticket("Login question"))
        await until(handle, lambda t: t.lookups, "looked up")
        await handle.execute_update(SupportTicket.assign, AssignRequest(agent="dana"))
        await handle.execute_update(SupportTicket.resolve, ResolveRequest(resolution="answered"))
        view = await handle.result()  # the 7-day reopen window passes in skipped time
    assert view.state == "closed" and view.routing_path[-2:] == ["resolved", "closed"]


def test_escalation_notice_goes_to_the_webhook_and_a_refusal_is_final(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import threading

    from temporalio.exceptions import ApplicationError as AppError
    from temporalio.testing import ActivityEnvironment

    from sagaworks.activities.support_ticket import WEBHOOK_ENV
    from sagaworks.contracts.support import EscalationNotice

    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            self.send_response(200 if self.path == "/ok" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    notice = EscalationNotice(
        ticket_id="T-1", ticket_type="general_query", subject="s", reason="r", priority="HIGH", workflow_id="ticket-T-1"
    )
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv(WEBHOOK_ENV, f"{url}/ok")
        assert ActivityEnvironment().run(notify_escalation, notice) == f"webhook {url}/ok"
        assert received == [notice.model_dump()]
        monkeypatch.setenv(WEBHOOK_ENV, f"{url}/missing")
        with pytest.raises(AppError, match="escalation webhook answered 404") as refused:
            ActivityEnvironment().run(notify_escalation, notice)
        assert refused.value.non_retryable
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv(WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/ok")  # nobody listens now
    with pytest.raises(AppError, match="escalation webhook unreachable") as unreachable:
        ActivityEnvironment().run(notify_escalation, notice)
    assert not unreachable.value.non_retryable


def _labels(ticket_type: str, priority: str, triggers: list[str] | None = None) -> Reply:
    body = {"ticket_type": ticket_type, "priority": priority, "escalation_triggers": triggers or []}
    return 200, {}, completion(json.dumps(body))


@pytest.fixture
def chat(request: pytest.FixtureRequest):
    """A local chat-completions server answering request n with the n-th reply (then the last)."""
    replies: list[Reply] = request.param
    with fake_chat_server(lambda _body, index: replies[min(index, len(replies) - 1)]) as server:
        yield server


def _classifier(server: FakeChatServer, db: Database) -> TicketClassifier:
    """The classifier on a gateway to the fake server (Groq's client), without a budget."""
    model = LLMSettings("groq", "test-model", server.base_url, "test-key")
    return TicketClassifier(LLM(db, settings=model, budget=LLMBudget(requests=0, tokens=0)))


@pytest.mark.parametrize("chat", [[_labels("technical_support", "HIGH")]], indirect=True)
async def test_the_llm_classifies_when_configured(
    dev_client: Client, task_queue: str, chat: FakeChatServer, db: Database
) -> None:
    # The rules read a LOW general query here; the model reads a HIGH technical problem.
    request = ticket("Something odd", "Since this morning the export hangs at 99%")
    assert (classify(f"{request.subject}\n{request.body}").ticket_type, classify(request.subject).priority) == (
        "general_query",
        "LOW",
    )
    async with worker(dev_client, task_queue, _classifier(chat, db)):
        handle = await start(dev_client, task_queue, request)
        view = await until(handle, lambda t: t.lookups, "classified and looked up")
        await handle.terminate("test over")
    assert (view.ticket_type, view.priority, view.classified_by) == ("technical_support", "HIGH", "groq:test-model")
    assert view.classification_fallback is None and view.routing_path[:2] == ["classifier", "technical_support"]
    assert chat.requests[0][1]["response_format"] == {"type": "json_object"}
    assert "the export hangs at 99%" in chat.prompt_of(0)


@pytest.mark.parametrize("chat", [[(200, {}, completion("It is probably a technical ticket."))]], indirect=True)
async def test_an_unusable_llm_answer_falls_back_to_the_rules_at_once(
    dev_client: Client, task_queue: str, chat: FakeChatServer, db: Database
) -> None:
    async with worker(dev_client, task_queue, _classifier(chat, db)):
        handle = await start(dev_client, task_queue, ticket("Important: my login is locked"))
        # The status query shows the fallback as the ticket does.
        view = await until(handle, lambda t: t.lookups, "classified and looked up")
        await handle.terminate("test over")
    # The gateway does not ask again: the rules are the declared answer to an unusable one.
    assert len(chat.requests) == 1
    assert (view.ticket_type, view.priority, view.classified_by) == ("customer_service", "HIGH", "rules (LLM fallback)")
    assert view.classification_fallback is not None
    assert "groq:test-model's answer is unusable" in view.classification_fallback


@pytest.mark.parametrize("chat", [[api_error(503, "overloaded")]], indirect=True)
async def test_an_open_llm_breaker_makes_the_rules_classify_saying_so(
    dev_client: Client, task_queue: str, chat: FakeChatServer, db: Database
) -> None:
    """The provider fails once, which opens the ``llm`` breaker (one failure here): the
    retry finds it open and the rules classify, without asking the model again."""
    model = LLMSettings("groq", "test-model", chat.base_url, "test-key")
    breakers = Breakers(db, {"llm": BreakerConfig(1, 600)})
    classifier = TicketClassifier(LLM(db, settings=model, budget=LLMBudget(requests=0, tokens=0), breakers=breakers))
    async with worker(dev_client, task_queue, classifier):
        handle = await start(dev_client, task_queue, ticket("Important: my login is locked"))
        view = await until(handle, lambda t: t.lookups, "classified and looked up")
        await handle.terminate("test over")
    assert len(chat.requests) == 1
    assert (view.ticket_type, view.classified_by) == ("customer_service", "rules (LLM fallback)")
    assert view.classification_fallback is not None and view.classification_fallback.startswith("breaker llm open")


@pytest.mark.parametrize(
    "chat", [[api_error(429, "slow down", {"retry-after": "3"}), _labels("sales_inquiry", "MEDIUM")]], indirect=True
)
async def test_a_rate_limited_classification_waits_for_retry_after(
    dev_client: Client, task_queue: str, chat: FakeChatServer, db: Database
) -> None:
    async with worker(dev_client, task_queue, _classifier(chat, db)):
        handle = await start(dev_client, task_queue, ticket("A question"))
        # The policy's own first interval is 1 s: a 3 s retry delay is Retry-After's.
        assert await retry_delay_of(handle, "classify_ticket") == timedelta(seconds=3)
        view = await until(handle, lambda t: t.lookups, "classified and looked up")
        await handle.terminate("test over")
    assert (view.ticket_type, view.classified_by, len(chat.requests)) == ("sales_inquiry", "groq:test-model", 2)


async def _scheduled(handle: WorkflowHandle[Any, Any], activity_type: str) -> None:
    """Wait until ``activity_type`` is scheduled (waiting in its task queue) for the run."""
    for _ in range(600):
        pending = (await handle.describe()).raw_description.pending_activities
        if any(p.activity_type.name == activity_type for p in pending):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id}: {activity_type} never scheduled")


async def test_a_critical_ticket_is_classified_before_a_backlog_of_low_ones(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    """The LLM queue has one slot, held by the first LOW ticket's call; three more LOW
    tickets queue behind it, then a CRITICAL one: the server dispatches it next."""
    first_call_held = threading.Event()

    def respond(body: dict[str, Any], index: int) -> Reply:
        if index == 0:
            first_call_held.wait(60)
        prompt = body["messages"][-1]["content"]
        return _labels("general_query", "CRITICAL" if "URGENT" in prompt else "LOW")

    subjects = ["question one", "question two", "question three", "question four"]
    with fake_chat_server(respond) as chat:
        async with worker(dev_client, task_queue, _classifier(chat, db), llm_slots=1):
            handles = []
            for subject in subjects:
                handles.append(await start(dev_client, task_queue, ticket(subject)))
                await _scheduled(handles[-1], "classify_ticket")
            critical = await start(dev_client, task_queue, ticket("URGENT: the site is down"))
            await _scheduled(critical, "classify_ticket")
            assert len(chat.requests) == 1  # the first call holds the only slot
            first_call_held.set()
            for handle in [*handles, critical]:
                await until(handle, lambda t: True, "classified")
                await handle.terminate("test over")
        order = [next(s for s in [*subjects, "URGENT"] if s in chat.prompt_of(i)) for i in range(len(chat.requests))]
    assert order[:2] == ["question one", "URGENT"], order
    assert sorted(order[2:]) == sorted(subjects[1:])


async def test_a_comment_sent_before_classification_is_kept(dev_client: Client, task_queue: str) -> None:
    """Signal-with-start delivers the comment before the ticket is classified (its view
    does not exist yet); it used to be dropped."""
    request = ticket("Hello")
    async with worker(dev_client, task_queue):
        handle = await start(
            dev_client,
            task_queue,
            request,
            start_signal="comment",
            start_signal_args=[Comment(author="grace", text="one more detail")],
        )
        view = await until(handle, lambda t: t.routing_path[:2] == ["classifier", "general_query"], "classified")
        await handle.terminate("test over")
    assert [(c.author, c.text) for c in view.comments] == [("grace", "one more detail")]


async def test_a_ticket_cancelled_while_it_is_classified_ends_canceled(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    """The cancellation reaches the classification's activity; the ticket ends there, where
    a failed classification would let the rules answer and the ticket go on."""
    answering = threading.Event()
    with fake_chat_server(lambda _body, _index: (answering.wait(60), _labels("general_query", "LOW"))[1]) as chat:
        async with worker(dev_client, task_queue, _classifier(chat, db)):
            handle = await start(dev_client, task_queue, ticket("Hello"))
            await _scheduled(handle, "classify_ticket")
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as ended:
                await asyncio.wait_for(handle.result(), 60)
            status = await handle.query(SupportTicket.status)
            answering.set()
    assert is_cancelled_exception(ended.value.cause), ended.value.cause
    assert (status.state, status.ticket) == ("canceled", None)


async def _looked_up(handle: WorkflowHandle[Any, Any]) -> TicketStatus:
    """The ticket's status once its ``look up`` step has completed."""
    for _ in range(600):
        status = await handle.query(SupportTicket.status)
        if "look up" in status.completed_steps:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} never completed its lookups; last: {status}")


async def _closed(handle: WorkflowHandle[Any, Any]) -> None:
    """Cancel the ticket, as ``saga cancel`` does, and wait for the run to close."""
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()


@pytest.mark.parametrize(
    "chat", [[_labels("technical_support", "HIGH"), _labels("sales_inquiry", "LOW")]], indirect=True
)
async def test_a_ticket_restarted_from_its_lookups_keeps_the_models_classification(
    dev_client: Client, task_queue: str, chat: FakeChatServer, db: Database
) -> None:
    """The model reads the ticket one way, then (asked again) another: a restart from
    ``look up`` keeps the first answer without asking; one from ``classify`` asks again."""
    async with worker(dev_client, task_queue, _classifier(chat, db)):
        source = await start(dev_client, task_queue, ticket("Something odd", "The export hangs at 99%"))
        await _looked_up(source)
        await _closed(source)
        again = await restart_run(dev_client, source.id, "look up")
        status = await _looked_up(again)
        await _closed(again)
        asked_before_reclassifying = len(chat.requests)
        reclassified = await restart_run(dev_client, source.id, "classify")
        view_reclassified = (await _looked_up(reclassified)).ticket
        await reclassified.terminate("test over")
    view = status.ticket
    assert view is not None and view_reclassified is not None
    assert asked_before_reclassifying == 1
    assert (view.ticket_type, view.priority, view.classified_by) == ("technical_support", "HIGH", "groq:test-model")
    assert status.plan == ["classify", "look up"] and status.restarted_from == f"{source.id}/{source.result_run_id}"
    assert [(t.step, t.reused) for t in status.steps] == [("classify", True), ("look up", False)]
    assert (status.done, status.total) == (2, 4)  # classified and looked up; not assigned, not resolved
    assert (view_reclassified.ticket_type, view_reclassified.priority) == ("sales_inquiry", "LOW")
    assert len(chat.requests) == 2


async def test_a_pause_holds_a_ticket_before_its_classification(dev_client: Client, task_queue: str) -> None:
    request = ticket("Hello")
    async with worker(dev_client, task_queue):
        handle = await start(dev_client, task_queue, request, start_signal="pause")
        for _ in range(600):
            held = await handle.query(SupportTicket.status)
            if held.state == "paused":
                break
            await asyncio.sleep(0.1)
        # The status query is answered after the run's first task: a classification not
        # held would have been scheduled by then.
        scheduled = [
            e for e in (await handle.fetch_history()).events if e.HasField("activity_task_scheduled_event_attributes")
        ]
        await handle.signal(SupportTicket.resume)
        view = await until(handle, lambda t: t.lookups, "classified and looked up")
        await handle.terminate("test over")
    assert (held.state, held.ticket, scheduled) == ("paused", None, [])
    assert view.routing_path[:3] == ["classifier", "general_query", "lookups"]


def test_an_assignee_filter_cannot_break_out_of_its_string() -> None:
    query = ticket_query(assignee="ada' OR TicketState = 'open\\")
    assert query.endswith("TicketAssignee = 'ada OR TicketState = open'"), query
