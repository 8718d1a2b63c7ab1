"""The web console in Debian's Chromium (Playwright): sign in, start orders from the form
generated from the input schema, watch one complete and cancel a slow one."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sagaworks.client.api import ApiSettings
from sagaworks.workflows.catalog import SAMPLES
from tests.apiserver import RunningApi, api_server
from tests.test_ui import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

TOKEN = "console-" + uuid.uuid4().hex

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
def api(dev_address: str, task_queue: str) -> Iterator[RunningApi]:
    settings = ApiSettings(token=TOKEN, task_queue=task_queue, address=dev_address, database_url=None)
    with api_server(settings) as running:
        yield running


@pytest_asyncio.fixture
async def page(api: RunningApi) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, base_url=api.url)
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            await browser.close()


async def sign_in(page: Any) -> None:
    await page.goto("/")
    await page.wait_for_url("**/login?next=/")
    await page.fill("input[name=token]", "wrong")
    await page.click("button[type=submit]")
    await page.get_by_text("that is not the API token").wait_for()
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.get_by_role("heading", name="Workflow catalog").wait_for()


async def start_from_sample(page: Any, sample: str, order_id: str) -> None:
    await page.goto("/families/order")
    await page.click(f"button[data-sample]:text-is('{sample}')")
    await page.fill("input[name=order_id]", order_id)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/runs/order-{order_id}")


async def test_start_from_the_form_and_watch_it_complete(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    body = await page.inner_text("main")
    for name in ("order", "document", "document-batch"):
        assert f"\n{name}\n" in f"\n{body}\n", name
    await page.screenshot(path=str(ARTIFACTS / "console-catalog.png"), full_page=True)

    # Bad input comes back naming the field, next to it; nothing starts.
    await page.goto("/families/order")
    await page.click("button[data-sample]:text-is('order.json')")
    await page.fill("input[name=customer_email]", "not an email")
    await page.click("button[type=submit]")
    error = page.locator("label.field.invalid[data-name=customer_email] .field-error")
    await error.get_by_text("customer_email").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "console-form-error.png"), full_page=True)

    # Switching samples resets what the new one leaves out to the schema's default.
    await page.click("button[data-sample]:text-is('order-slow.json')")
    assert await page.input_value("input[name=step_delay_seconds]") == "5"
    await page.click("button[data-sample]:text-is('order.json')")
    assert await page.input_value("input[name=step_delay_seconds]") == "0"

    order_id = f"ui-{uuid.uuid4().hex[:10]}"
    await start_from_sample(page, "order.json", order_id)
    await page.locator("#status.COMPLETED").wait_for()
    result = await page.inner_text("#result")
    assert order_id in result and "charge_payment" in result and "create_shipping_label" in result
    assert await page.get_attribute("a[href*='/history']", "href")  # the Temporal Web UI link
    await page.screenshot(path=str(ARTIFACTS / "console-completed.png"), full_page=True)

    await page.goto("/runs?family_name=order")
    await page.get_by_role("link", name=f"order-{order_id}").wait_for()


async def test_pause_resume_and_cancel_a_slow_order(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    order_id = f"ui-slow-{uuid.uuid4().hex[:10]}"
    await start_from_sample(page, "order-slow.json", order_id)
    # Live progress over SSE: wait until a step is done, so there is something to undo.
    # (A locator, not a JavaScript predicate: the console's policy forbids eval, and the
    # test's browser runs under it.)
    await page.locator("#done").filter(has_text=re.compile(r"^[1-9]")).wait_for()
    await page.click("button[data-action=pause]")
    await page.locator("#state").get_by_text("paused").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "console-paused.png"), full_page=True)
    await page.click("button[data-action=resume]")
    await page.locator("#state").get_by_text("running").wait_for()
    await page.click("button[data-action=cancel]")
    await page.locator("#status.CANCELED").wait_for()
    compensations = await page.inner_text("#compensations")
    assert "delete_customer_account" in compensations and "compensated" in compensations
    assert "CancelledError" in await page.inner_text("#failure")
    await page.screenshot(path=str(ARTIFACTS / "console-canceled.png"), full_page=True)


async def test_a_query_run_shows_its_chart_and_sql(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    await page.goto("/families/query")
    await page.fill("input[name=question]", "average temperature by month in 2014")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/runs/query-*")
    await page.locator("#status.COMPLETED").wait_for()
    chart = page.locator("img#chart")
    await chart.wait_for(state="visible")
    # The SVG decoded and drew as an image: it has the size the worker rendered it at (a
    # broken image would be its alt text's line).
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200, box
    sql = await page.inner_text("#sql")
    assert sql.startswith("SELECT") and "FROM seattle_weather" in sql and "2014" in sql
    assert "data-agent" in await page.inner_text("#produced-by")
    await page.screenshot(path=str(ARTIFACTS / "console-query.png"), full_page=True)


async def test_approve_a_pending_routing_request_from_its_page(page: Any, order_worker: Any) -> None:
    await sign_in(page)
    body = json.loads((SAMPLES / "routing" / "admin-request.json").read_text())
    body["request_id"] = f"ui-{uuid.uuid4().hex[:8]}"
    started = await page.request.post("/api/workflows/routing", data=body)
    assert started.status == 201, await started.text()
    workflow_id = (await started.json())["workflow_id"]
    await page.goto(f"/runs/{workflow_id}")
    form = page.locator("#approval-form")
    await form.wait_for(state="visible")  # shown once the run says the approval is pending
    assert "alice, bob" in await page.inner_text("#approvers")
    # In the family's own words (its declaration), not one family's words for every family.
    deadline = await page.inner_text("#approval-deadline")
    assert "then it is rejected, or asked of the second group the request names" in deadline, deadline
    assert "This admin request waits for a decision" in await page.inner_text("#approval")
    message = page.locator("#approval-message")

    # Both required fields are asked for before anything is sent.
    await page.click("button[data-update=approve]")
    await message.get_by_text("approver: a name is required").wait_for()
    await page.fill("input[name=approver]", "alice")
    await page.click("button[data-update=reject]")
    await message.get_by_text("reason: a rejection needs a reason").wait_for()
    # The workflow's validator refuses an approver outside the group: its words are shown.
    await page.fill("input[name=approver]", "mallory")
    await page.click("button[data-update=approve]")
    await message.get_by_text("Refused: approver: mallory is not one of alice, bob").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "console-approval.png"), full_page=True)

    await page.fill("input[name=approver]", "alice")
    await page.click("button[data-update=approve]")
    await page.locator("#status.COMPLETED").wait_for()
    result = await page.request.get(f"/api/workflows/{workflow_id}/result")
    outcome = (await result.json())["result"]
    assert (outcome["approval"], outcome["decided_by"], outcome["escalated"]) == ("approved", "alice", False)
    assert "alice" in await page.inner_text("#result")


async def test_an_optional_boolean_the_user_did_not_touch_is_not_sent(page: Any) -> None:
    """The order form's "Local Steps" starts unset and stays out of the body unless chosen,
    so a console order runs as a CLI or API one does (the request is caught before it leaves)."""
    await sign_in(page)
    sent: list[dict[str, Any]] = []
    both = asyncio.Event()

    async def catch(route: Any) -> None:
        sent.append(json.loads(route.request.post_data))
        if len(sent) == 2:
            both.set()
        await route.fulfill(
            status=422,
            content_type="application/json",
            body=json.dumps({"error": {"type": "InvalidRequest", "message": "caught by the test"}}),
        )

    await page.route("**/api/workflows/order", catch)
    await page.goto("/families/order")
    await page.click("button[data-sample]:text-is('order.json')")
    assert await page.input_value("select[name=local_steps]") == ""
    await page.click("button[type=submit]")
    await page.get_by_text("caught by the test").wait_for()
    await page.select_option("select[name=local_steps]", "false")
    await page.click("button[type=submit]")
    await asyncio.wait_for(both.wait(), timeout=60)
    await page.screenshot(path=str(ARTIFACTS / "console-order-form.png"), full_page=True)
    assert "local_steps" not in sent[0] and sent[0]["order_id"].startswith("demo-1001")
    assert sent[-1]["local_steps"] is False
