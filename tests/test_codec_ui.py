"""The Web UI in Chromium shows encrypted payloads decoded, through the codec server only."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from sagaworks.activities.db import Database
from sagaworks.client.connection import data_converter
from sagaworks.client.devserver import start_embedded
from sagaworks.worker import running_worker
from tests.encryption import TEST_ENV, TOKEN, CodecServer, codec_server  # noqa: F401 - a fixture
from tests.orders import make_order, start_order
from tests.test_ui import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


async def test_ui_shows_decoded_inputs_through_the_codec_server(codec_server: CodecServer, db: Database) -> None:
    from playwright.async_api import async_playwright

    ui_port, endpoint = codec_server.ui_port, f"http://127.0.0.1:{codec_server.port}/{TOKEN}"
    async with await start_embedded(ui_port=ui_port, ui_codec_endpoint=endpoint) as env:
        client = await Client.connect(
            env.client.service_client.config.target_host, data_converter=data_converter(TEST_ENV)
        )
        task_queue = f"tq-{uuid.uuid4()}"
        async with running_worker(client, db, task_queue=task_queue, activity_threads=4):
            handle = await start_order(client, task_queue, make_order())
            await handle.result()
        # What the server stores as the input: the UI shows this without the codec server.
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        stored_input = base64.b64encode(started.input.payloads[0].data).decode()
        page_url = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{handle.id}/{handle.result_run_id}/history"

        ARTIFACTS.mkdir(exist_ok=True)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1800})
            try:
                await page.goto(page_url)
                # The input, stored as ciphertext, is shown as the order's JSON.
                await page.get_by_text('"customer_email": "ada@example.com"').first.wait_for(timeout=30_000)
                await page.screenshot(path=str(ARTIFACTS / "ui-codec-decoded.png"), full_page=True)
                # So is a step's input, idempotency key included.
                await page.get_by_text("charge_payment", exact=True).first.click()
                await page.get_by_text(f'"key": "{handle.id}:charge_payment"').first.wait_for(timeout=30_000)

                # The same page without the codec server: the browser gets ciphertext only.
                await codec_server.stop()
                await page.reload()
                await page.get_by_text(stored_input[:40]).first.wait_for(timeout=30_000)
                assert "ada@example.com" not in await page.inner_text("body")
                await page.screenshot(path=str(ARTIFACTS / "ui-codec-without-server.png"), full_page=True)
            finally:
                await browser.close()
