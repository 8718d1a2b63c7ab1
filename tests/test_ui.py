"""The Temporal Web UI in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from sagaworks.activities.db import Database
from sagaworks.client.devserver import start_embedded
from sagaworks.worker import running_worker
from tests.orders import make_order, start_order
from tests.ports import free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# No network but loopback here: keep Chromium from calling home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest_asyncio.fixture(scope="module")
async def ui_env() -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    port = free_port()
    async with await start_embedded(ui_port=port) as env:
        yield env, f"http://127.0.0.1:{port}"


async def test_ui_shows_completed_and_compensated_sagas(ui_env, db: Database, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    env, ui = ui_env
    task_queue = f"tq-{uuid.uuid4()}"
    async with running_worker(env.client, db, task_queue=task_queue, activity_threads=4):
        completed = await start_order(env.client, task_queue, make_order())
        await completed.result()
        failed = await start_order(
            env.client, task_queue, make_order(inject_failure={"step": "reserve_inventory", "mode": "permanent"})
        )
        with contextlib.suppress(WorkflowFailureError):
            await failed.result()

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            for handle, status, activities in [
                (completed, "COMPLETED", ["create_customer_account", "charge_payment", "create_shipping_label"]),
                (
                    failed,
                    "FAILED",
                    ["reserve_inventory", "release_inventory", "refund_payment", "delete_customer_account"],
                ),
            ]:
                await page.goto(f"{ui}/namespaces/default/workflows/{handle.id}/{handle.result_run_id}/history")
                await page.get_by_text("OrderFulfillmentSaga").first.wait_for(timeout=30_000)
                await page.get_by_text(activities[-1]).first.wait_for(timeout=30_000)
                text = await page.inner_text("body")
                assert handle.id in text and "OrderFulfillmentSaga" in text
                assert status in text.upper()
                for activity in activities:
                    assert activity in text, activity
                # The workflow's input is shown as readable JSON.
                assert '"customer_email": "ada@example.com"' in text
                await page.screenshot(path=str(ARTIFACTS / f"ui-{status.lower()}.png"), full_page=True)

                # Expanding a step's event shows its input as decoded JSON, idempotency key included.
                await page.get_by_text("charge_payment", exact=True).first.click()
                await page.get_by_text(f'"key": "{handle.id}:charge_payment"').first.wait_for(timeout=30_000)
                await page.screenshot(path=str(ARTIFACTS / f"ui-{status.lower()}-step.png"), full_page=True)
        finally:
            await browser.close()
    # The screenshots stay in tests/artifacts/ for a person to look at: each is a real
    # rendering of the page (a PNG far larger than a blank page of that size).
    for name in ("completed", "completed-step", "failed", "failed-step"):
        shot = (ARTIFACTS / f"ui-{name}.png").read_bytes()
        assert shot.startswith(b"\x89PNG") and len(shot) > 30_000, name
