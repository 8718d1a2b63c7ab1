"""The console's run page in Debian's Chromium (Playwright): a ticket assigned and resolved
through the forms generated from its Updates' input models and shown as text, a routing
request approved through its generated approval form, an order restarted from a step (and
a restart that would reuse compensated steps said first and confirmed)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sagaworks.workflows.catalog import SAMPLES
from tests.test_console import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    api,
    page,
    pytestmark,  # noqa: F401 (skipped without Chromium)
    sign_in,
)


async def until(page: Any, workflow_id: str, check: Any, what: str) -> None:
    """Wait until the ticket the run's status reports passes ``check``."""
    for _ in range(600):
        described = await (await page.request.get(f"/api/workflows/{workflow_id}")).json()
        progress = described.get("progress")
        if isinstance(progress, dict) and check(progress.get("ticket")):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never reached: {what}")


async def start(page: Any, family: str, sample: str, **fields: Any) -> str:
    """Start a run of ``family``'s sample (with ``fields`` replaced) through the API."""
    body = json.loads((SAMPLES / sample).read_text()) | fields
    started = await page.request.post(f"/api/workflows/{family}", data=body)
    assert started.status == 201, await started.text()
    return str((await started.json())["workflow_id"])


async def test_assign_and_resolve_a_ticket_from_its_page(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    workflow_id = await start(
        page, "support-ticket", "tickets/ticket-billing.json", ticket_id=f"UI-{uuid.uuid4().hex[:8]}"
    )
    await until(page, workflow_id, lambda ticket: bool(ticket and ticket["lookups"]), "its lookups done")
    await page.goto(f"/runs/{workflow_id}")
    # The forms come from the Updates' (and the comment signal's) input models.
    for form in ("update-assign", "update-resolve", "update-reopen", "signal-comment"):
        await page.locator(f"form#{form}").wait_for()
    assert await page.locator("form#update-assign input[name=agent]").count() == 1
    assert await page.locator("form#update-resolve input[name=resolution]").count() == 1

    # A required field is asked for before anything is sent.
    await page.click("form#update-assign button[type=submit]")
    await page.locator("form#update-assign .form-message").get_by_text("agent: required").wait_for()
    # The validator's refusal, in its own words: a ticket not yet assigned cannot be resolved.
    await page.fill("form#update-resolve input[name=resolution]", "Refunded the duplicate payment")
    await page.click("form#update-resolve button[type=submit]")
    message = page.locator("form#update-resolve .form-message")
    await message.get_by_text("Refused:").wait_for()
    assert "only an assigned ticket can be resolved" in await message.inner_text()

    await page.fill("form#update-assign input[name=agent]", "dana")
    await page.click("form#update-assign button[type=submit]")
    await page.locator("#ticket-assignee").get_by_text("dana").wait_for()
    assert await page.inner_text("#ticket-state") == "assigned"
    await page.fill("form#update-resolve input[name=resolution]", "Refunded the duplicate payment")
    await page.click("form#update-resolve button[type=submit]")
    await page.locator("#ticket-state").get_by_text("resolved").wait_for()
    assert await page.inner_text("#ticket-resolution") == "Refunded the duplicate payment"

    # Shown as text: the subject and priority as they are, the lookups as rows, not the
    # Python literal the MCP tool printed.
    assert await page.inner_text("#ticket-subject") == "Refund for a duplicate payment"
    assert await page.inner_text("#ticket-priority") in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    lookups = await page.inner_text("#ticket-lookups")
    assert "customer tier" in lookups and "[{'" not in lookups and "{'" not in lookups, lookups
    escalations = await page.inner_text("#ticket-escalations")
    assert "{'" not in escalations and "Escalation(" not in escalations
    await page.screenshot(path=str(ARTIFACTS / "console-ticket.png"), full_page=True)
    await page.request.post(f"/api/workflows/{workflow_id}/cancel")


async def test_approve_a_routing_request_through_the_generated_form(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    workflow_id = await start(page, "routing", "routing/admin-request.json", request_id=f"ui-{uuid.uuid4().hex[:8]}")
    await page.goto(f"/runs/{workflow_id}")
    form = page.locator("#approval-form")
    await form.wait_for(state="visible")
    # The fields of the approve Update's input model (ApprovalDecision); approve and reject
    # are not offered twice.
    assert await form.locator("label.field[data-name=approver][data-required]").count() == 1
    assert await form.locator("input[name=reason]").count() == 1
    assert await page.locator("form#update-approve, form#update-reject").count() == 0
    await page.fill("#approval-form input[name=approver]", "bob")
    await page.click("button[data-update=approve]")
    await page.locator("#status.COMPLETED").wait_for()
    outcome = (await (await page.request.get(f"/api/workflows/{workflow_id}/result")).json())["result"]
    assert (outcome["approval"], outcome["decided_by"]) == ("approved", "bob")


async def test_restart_an_order_from_a_step_of_its_page(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    workflow_id = await start(page, "order", "orders/order.json", order_id=f"ui-restart-{uuid.uuid4().hex[:8]}")
    await page.goto(f"/runs/{workflow_id}")
    await page.locator("#status.COMPLETED").wait_for()
    first_run = (await (await page.request.get(f"/api/workflows/{workflow_id}")).json())["run_id"]
    # One button per completed step.
    buttons = page.locator("#restart button[data-restart]")
    assert await buttons.count() == 5
    async with page.expect_navigation():  # to the run page again: the new run's
        await page.click("#restart button[data-restart=reserve_inventory]")
    await page.locator("#status.COMPLETED").wait_for()
    described = await (await page.request.get(f"/api/workflows/{workflow_id}")).json()
    assert described["run_id"] != first_run
    assert described["progress"]["restarted_from"] == f"{workflow_id}/{first_run}"
    reused = [s["step"] for s in described["progress"]["steps"] if s["reused"]]
    assert reused == ["create_customer_account", "charge_payment", "send_notification"]
    await page.screenshot(path=str(ARTIFACTS / "console-restarted.png"), full_page=True)


async def test_a_restart_that_reuses_compensated_steps_is_said_first_and_confirmed(
    page: Any, order_worker: Any
) -> None:
    await sign_in(page)
    workflow_id = await start(
        page,
        "order",
        "orders/order.json",
        order_id=f"ui-undone-{uuid.uuid4().hex[:8]}",
        inject_failure={"step": "create_shipping_label", "mode": "permanent"},
    )
    await page.goto(f"/runs/{workflow_id}")
    await page.locator("#status.FAILED").wait_for()
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/restart" in request.url else None)
    await page.click("#restart button[data-restart=create_shipping_label]")
    warning = page.locator("#restart-warning")
    await warning.wait_for(state="visible")
    text = await warning.inner_text()
    assert "compensated create_customer_account, charge_payment, send_notification, reserve_inventory" in text, text
    assert sent == []  # said before anything is sent
    await page.click("#restart-cancel")
    assert await page.locator("#restart-confirm").is_hidden()
    # The API refuses it as needing force, naming the steps (what the page asks again on).
    refused = await page.request.post(f"/api/workflows/{workflow_id}/restart?from_stage=create_shipping_label")
    error = (await refused.json())["error"]
    assert (refused.status, error["type"], error["field"]) == (409, "RestartNeedsForce", "force")
    assert "set force=true" in error["message"] and "charge_payment" in error["message"]
    sent.clear()
    await page.click("#restart button[data-restart=create_shipping_label]")
    failed_run = (await (await page.request.get(f"/api/workflows/{workflow_id}")).json())["run_id"]
    async with page.expect_navigation():
        await page.click("#restart-force")
    assert len(sent) == 1 and "force=true" in sent[0]
    # The forced run started, reusing the undone results; the steps after them still find
    # their rows compensated (a compensated step never takes effect again) and it fails.
    await page.locator("#status.FAILED").wait_for()
    described = await (await page.request.get(f"/api/workflows/{workflow_id}")).json()
    assert described["run_id"] != failed_run
    assert described["progress"]["restarted_from"] == f"{workflow_id}/{failed_run}"
