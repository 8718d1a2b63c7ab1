"""Secrets never enter workflow history.

API keys and tokens are read by activities (and the client/worker processes) from the
environment, never passed as workflow or activity input, so no history (which Temporal
keeps, the UI shows and `saga history` writes to files) holds one. These tests scan every
recorded history in tests/histories/ and the histories of a fresh run that calls the LLM
through Groq's client with an API key, for the configured secret values and for strings that
look like keys. Payloads are scanned decoded (decrypted with the TEST keys where encrypted).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path
from typing import cast

import pytest
from google.protobuf import json_format
from sqlalchemy.engine import make_url
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory

from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.client.codec import ENCODING, KEYS_ENV, EncryptionCodec, parse_keys
from sagaworks.client.codec_server import TOKEN_ENV
from sagaworks.client.replay import load_history
from sagaworks.worker import running_worker
from tests.documents import start_document
from tests.encryption import TEST_KEYS
from tests.fake_chat_server import concepts_reply, fake_chat_server
from tests.orders import make_order, start_order
from tests.payloads import history_payloads, nested

HISTORIES = Path(__file__).parent / "histories"

KEY_LIKE = {
    "Groq API key": re.compile(r"gsk_[A-Za-z0-9]{10,}"),
    "sk- API key": re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    "bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    "long hex secret": re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{40,}(?![0-9A-Za-z])"),
    "long base64 secret": re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}"),
}
# Content addresses are no secrets: a SHA-256 in hex (exactly 64 characters: document and
# plan-stage outputs, article dedupe keys) and a document's rows key ("<40 hex>/<size>/<overlap>").
# A configured secret of that shape is still caught, by value, below.
NOT_SECRET = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-f]{64}|[0-9a-f]{40}/\d+/\d+)(?![0-9A-Za-z])")
SECRET_VARIABLES = ("GROQ_API_KEY", "TEMPORAL_API_KEY", TOKEN_ENV)
DATABASE_VARIABLES = ("DATABASE_URL", "SAGAWORKS_TEST_POSTGRES_URL")


def _random_looking(kind: str, match: str) -> bool:
    # Names (workflowExecutionCompletedEventAttributes), paths and ids (uuids, run keys) are
    # long but not random: 40+ random characters mix digits with letters, and base64 ones
    # mix both cases too.
    digits, lower, upper = (any(test(c) for c in match) for test in (str.isdigit, str.islower, str.isupper))
    return digits and ((lower and upper) if "base64" in kind else (lower or upper))


def key_like(text: str) -> list[str]:
    """What in ``text`` looks like a key or token (a short description each)."""
    text = NOT_SECRET.sub("", text)
    found = []
    for kind, pattern in KEY_LIKE.items():
        for match in pattern.finditer(text):
            if kind.startswith("long") and not _random_looking(kind, match.group()):
                continue
            found.append(f"{kind}: {match.group()[:6]}...")  # never the whole secret in a report
    return found


def configured_secrets(environ: dict[str, str]) -> list[str]:
    """The secret values this environment configures (and the TEST encryption keys)."""
    values = [environ[name] for name in SECRET_VARIABLES if environ.get(name)]
    for name in DATABASE_VARIABLES:
        if environ.get(name) and (password := make_url(environ[name]).password):
            values.append(str(password))
    keys = {**TEST_KEYS, **parse_keys(environ.get(KEYS_ENV, ""), KEYS_ENV)}
    values += [base64.b64encode(key).decode() for key in keys.values()]
    values += [key.decode(errors="replace") for key in keys.values()]
    return values


async def history_texts(history: WorkflowHistory) -> list[tuple[str, str]]:
    """The history as (where, text): every payload decoded (decrypted), each event as JSON."""
    codec = EncryptionCodec(TEST_KEYS)
    texts = []
    for where, payload in history_payloads(history):
        if payload.metadata.get("encoding") == ENCODING:
            [payload] = await codec.decode([payload])
        texts.append((f"payload {where}", payload.data.decode(errors="replace")))
    for event in history.events:
        bare = type(event)()
        bare.CopyFrom(event)
        for _, found in nested(bare, Payload):
            payload = cast(Payload, found)
            payload.ClearField("data")  # scanned decoded above; base64 of ciphertext is no secret
        texts.append((f"event {event.event_id}", json_format.MessageToJson(bare)))
    return texts


async def assert_no_secrets(history: WorkflowHistory, secret_values: list[str]) -> None:
    texts = await history_texts(history)
    assert any(text for _, text in texts), "nothing scanned"
    for where, text in texts:
        assert key_like(text) == [], where
        for number, value in enumerate(secret_values):
            assert value not in text, f"configured secret #{number} in {where}"  # not the value


def test_the_scan_finds_planted_secrets_and_spares_ordinary_values() -> None:
    planted = {
        "Groq API key": f'{{"api_key": "gsk_{secrets.token_hex(20)}"}}',
        "bearer token": '{"headers": {"Authorization": "Bearer abc.def-ghi_jkl"}}',
        "long hex secret": f'{{"secret": "{secrets.token_hex(24)}"}}',  # 48: not a SHA-256 address
        "long base64 secret": f'{{"key": "{base64.b64encode(secrets.token_bytes(32)).decode()}"}}',
        "sk- API key": '{"openai": "sk-proj-0123456789abcdefABCDEF"}',
    }
    for kind, text in planted.items():
        assert [hit.split(":")[0] for hit in key_like(text)][:1] == [kind], text
    ordinary = (
        '{"content_hash": "' + "a1" * 32 + '", "taskQueue": "vm-3a7bc092a1654ff2969aa01a8f67edaa", '
        '"type": "workflowExecutionCompletedEventAttributes", "runId": "01a20b98-4747-7df8-8a2e-3f8b24b57447", '
        '"path": "/work/tests/histories/documents/durable-execution.txt"}'
    )
    assert key_like(ordinary) == []


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.rglob("*.json")), ids=lambda p: str(p.relative_to(HISTORIES).with_suffix(""))
)
async def test_recorded_histories_hold_no_secrets(path: Path) -> None:
    await assert_no_secrets(load_history(path), configured_secrets(dict(os.environ)))


async def test_a_run_that_uses_an_api_key_keeps_it_out_of_history(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_key = "gsk_" + secrets.token_hex(24)
    document = tmp_path / "note.txt"
    document.write_text("Sagas undo completed steps with compensations when a later step fails.")
    with fake_chat_server(lambda _body, _index: concepts_reply("saga", "compensation")) as groq:
        # The worker's activities take the key from the environment, as in production.
        monkeypatch.setenv("GROQ_API_KEY", api_key)
        monkeypatch.setenv("GROQ_BASE_URL", groq.base_url)
        monkeypatch.setenv("GROQ_MODEL", "test-model")
        monkeypatch.delenv("SAGAWORKS_LLM_PROVIDER", raising=False)
        settings = DocumentSettings(roots=(tmp_path,))
        async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
            result = await (await start_document(dev_client, task_queue, document)).result()
            await (await start_order(dev_client, task_queue, make_order())).result()
    assert result.provider == "groq" and groq.requests  # the key was used, by the activity

    runs = [run async for run in dev_client.list_workflows(f"TaskQueue = '{task_queue}'")]
    assert len(runs) >= 2
    for run in runs:
        history = await dev_client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        await assert_no_secrets(history, [api_key, *configured_secrets(dict(os.environ))])


def test_configured_secrets_include_database_passwords() -> None:
    environ = {"DATABASE_URL": "postgresql+psycopg://app:s3cr3t-pw@db:5432/app", "GROQ_API_KEY": "gsk_x"}
    assert {"s3cr3t-pw", "gsk_x"} <= set(configured_secrets(environ))
