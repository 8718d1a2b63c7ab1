"""With encryption on, Temporal stores only ciphertext; the keys' holders read it back.

A real order saga runs on the dev server through a worker and a client that encrypt; its
history is then read with a client WITHOUT the codec (as the server, its database or a
person with only Temporal access sees it) and with it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError

from sagaworks.activities.db import Database
from sagaworks.client.codec import ENCODING, KEY_ID_METADATA
from sagaworks.client.connection import data_converter
from sagaworks.client.devserver import temporal_binary
from sagaworks.worker import running_worker
from tests.encryption import NEW_KEY_ID, OLD_KEY, OLD_KEY_ID, TEST_ENV, TOKEN, CodecServer, codec_server  # noqa: F401
from tests.note_taker import NoteTaker
from tests.orders import make_order, start_order
from tests.payloads import history_failures, history_payloads, wait_for_event

SAGA = str(Path(sys.executable).parent / "saga")
SECRETS_OF_THE_ORDER = [b"ada@example.com", b"12 Analytical Row", b"WIDGET-1"]


@pytest_asyncio.fixture
async def encrypted_client(dev_address: str) -> Client:
    return await Client.connect(dev_address, data_converter=data_converter(TEST_ENV))


@pytest_asyncio.fixture
async def encrypted_orders(encrypted_client: Client, db: Database, task_queue: str) -> dict[str, str]:
    """Workflow ids of a completed and a compensated order saga, run with encryption on."""
    async with running_worker(encrypted_client, db, task_queue=task_queue, activity_threads=4):
        completed = await start_order(encrypted_client, task_queue, make_order())
        await completed.result()
        failing = make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
        compensated = await start_order(encrypted_client, task_queue, failing)
        with pytest.raises(WorkflowFailureError):
            await compensated.result()
    return {"completed": completed.id, "compensated": compensated.id}


async def test_the_server_stores_only_ciphertext(
    encrypted_orders: dict[str, str], encrypted_client: Client, dev_client: Client
) -> None:
    assert dev_client.data_converter.payload_codec is None  # the embedded default: no codec
    for workflow_id in encrypted_orders.values():
        history = await dev_client.get_workflow_handle(workflow_id).fetch_history()
        payloads = history_payloads(history)
        # Input, every activity's input and result, the result or failure details, ...
        assert len(payloads) >= 10, [path for path, _ in payloads]
        for path, payload in payloads:
            if ".header." in f".{path}." or ".patch-data." in path or path.endswith(".TemporalChangeVersion"):
                # Headers carry tracing context only; a workflow.patched marker and the
                # TemporalChangeVersion search attribute it sets carry the patch id: the SDK
                # writes them itself, unencoded (search attributes must be readable by the
                # server), and none holds user data.
                continue
            assert payload.metadata["encoding"] == ENCODING, path
            assert payload.metadata[KEY_ID_METADATA] == NEW_KEY_ID.encode(), path
        raw = history.to_json().encode()
        for secret in SECRETS_OF_THE_ORDER:
            assert secret not in raw
            assert all(secret not in payload.data for _, payload in payloads)
        for failure in history_failures(history):
            assert failure.message == "Encoded failure" and not failure.stack_trace

        # Without the codec the result cannot be read ...
        with pytest.raises(Exception, match="binary/encrypted"):
            await dev_client.get_workflow_handle(workflow_id).result()
        # ... with it, every payload decodes to the order's data.
        assert encrypted_client.data_converter.payload_codec is not None
        encrypted = [p for _, p in payloads if p.metadata["encoding"] == ENCODING]
        decoded = await encrypted_client.data_converter.payload_codec.decode(encrypted)
        assert b"ada@example.com" in b"".join(p.data for p in decoded)

    with pytest.raises(WorkflowFailureError) as failed:
        await encrypted_client.get_workflow_handle(encrypted_orders["compensated"]).result()
    assert "saga failed at create_shipping_label" in str(failed.value.cause)  # decrypted again


async def test_a_worker_requiring_encryption_never_runs_plaintext_input(
    encrypted_client: Client, dev_client: Client, db: Database, task_queue: str
) -> None:
    """A client without the keys (a plain-JSON ``temporal workflow start``) cannot feed a worker."""
    async with running_worker(encrypted_client, db, task_queue=task_queue, activity_threads=2):
        forged = await start_order(dev_client, task_queue, make_order())
        refusal = await wait_for_event(forged, lambda event: event.HasField("workflow_task_failed_event_attributes"))
    failure = refusal.workflow_task_failed_event_attributes.failure
    assert failure.message == "Encoded failure"  # the worker encrypts its failures too
    error: BaseException | None = await encrypted_client.data_converter.decode_failure(failure)
    chain = []
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    assert any("SAGAWORKS_REQUIRE_ENCRYPTION" in message for message in chain), chain
    history = await forged.fetch_history()
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    await forged.terminate("test over")


async def test_a_plaintext_signal_is_dropped_and_the_run_goes_on(
    encrypted_client: Client, dev_client: Client, db: Database, task_queue: str
) -> None:
    """A signal sent without the keys must not wedge the run (a codec error would fail
    every later workflow task): it is dropped, and encrypted signals still arrive."""
    async with running_worker(
        encrypted_client, db, task_queue=task_queue, activity_threads=2, extra_workflows=[NoteTaker]
    ):
        handle = await encrypted_client.start_workflow(
            NoteTaker.run, 2, id=f"notes-{task_queue}", task_queue=task_queue
        )
        await handle.signal(NoteTaker.note, "first")
        await dev_client.get_workflow_handle(handle.id).signal("note", "forged, in plaintext")
        await wait_for_event(
            handle,
            lambda e: (
                e.HasField("workflow_execution_signaled_event_attributes")
                and b"forged" in e.workflow_execution_signaled_event_attributes.input.payloads[0].data
            ),
        )
        await handle.signal(NoteTaker.note, "second")
        assert await asyncio.wait_for(handle.result(), 60) == ["first", "second"]
        history = await handle.fetch_history()
        assert not any(e.HasField("workflow_task_failed_event_attributes") for e in history.events)


async def _saga(dev_address: str, environ: dict[str, str], *args: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAGAWORKS_ENCRYPTION")}
    process = await asyncio.create_subprocess_exec(
        SAGA,
        *args,
        env={**clean, **environ, "TEMPORAL_ADDRESS": dev_address, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_saga_history_and_replay_use_the_configured_keys(
    encrypted_orders: dict[str, str], dev_address: str, tmp_path: Path
) -> None:
    out = tmp_path / "history.json"
    code, output = await _saga(dev_address, TEST_ENV, "history", encrypted_orders["completed"], "--out", str(out))
    assert code == 0, output
    assert b"ada@example.com" not in out.read_bytes()  # a saved history stays ciphertext: safe to share
    code, output = await _saga(dev_address, TEST_ENV, "replay", "--file", str(out))
    assert code == 0 and "1/1 histories replayed cleanly" in output, output
    code, output = await _saga(dev_address, TEST_ENV, "replay", encrypted_orders["compensated"])
    assert code == 0, output

    # Only the retired key configured: the newer key's id is named.
    old_only = {"SAGAWORKS_ENCRYPTION_KEYS": f"{OLD_KEY_ID}:{base64.b64encode(OLD_KEY).decode()}"}
    code, output = await _saga(dev_address, old_only, "replay", "--file", str(out))
    assert code == 1 and f"key id '{NEW_KEY_ID}'" in output, output


async def test_the_temporal_cli_decodes_through_the_codec_server(
    encrypted_orders: dict[str, str], dev_address: str, codec_server: CodecServer
) -> None:
    async def show(*codec_args: str) -> tuple[int | None, str]:
        process = await asyncio.create_subprocess_exec(
            temporal_binary(),
            "workflow",
            "show",
            "-w",
            encrypted_orders["completed"],
            "--address",
            dev_address,
            "--output",
            "json",
            "--codec-endpoint",
            f"http://127.0.0.1:{codec_server.port}",
            *codec_args,
            "--command-timeout",
            "5s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        return process.returncode, output.decode()

    def workflow_input(shown: str) -> tuple[bytes, bytes]:
        started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
        [payload] = started["input"]["payloads"]
        return base64.b64decode(payload["metadata"]["encoding"]), base64.b64decode(payload["data"])

    code, shown = await show("--codec-auth", f"Bearer {TOKEN}")
    assert code == 0, shown
    encoding, data = workflow_input(shown)
    assert encoding == b"json/plain" and b'"customer_email":"ada@example.com"' in data
    # Without the token the codec server answers 401: the CLI decodes nothing.
    code, shown = await show()
    assert code != 0 and "ada@example.com" not in shown, shown
