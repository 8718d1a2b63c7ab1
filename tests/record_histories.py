"""Record the histories that tests/test_replay.py replays: python -m tests.record_histories

Runs order sagas (completed, compensated, cancelled, retried, refused for an unknown SKU,
reset and then cancelled), document pipelines
(completed, rejected, compensated, several chunks per extraction activity) and a document
batch's first run on a throwaway dev server and writes their histories to
tests/histories/, and order sagas run with encryption on (the TEST keys of
tests/encryption.py) to tests/histories/encrypted/. A scenario already recorded gets a new
file beside the old one (``NAME-YYYYMMDD.json``): old files are never overwritten or deleted,
since running workflows still have old histories and the code must keep replaying them; once
no open run needs a patch's old branch and the patch is deprecated, the histories from before
it move to ``retired/`` (docs/patches.md), and their names are not given again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from sagaworks import registry
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentSettings
from sagaworks.client.connection import data_converter
from sagaworks.client.demo import progress_at, send_demo_update
from sagaworks.client.devserver import start_embedded
from sagaworks.client.postmortem import restart_run
from sagaworks.client.runs import start_run
from sagaworks.contracts.document import BatchInput, DocumentInput
from sagaworks.worker import running_worker
from sagaworks.workflows.catalog import SAMPLES as SAMPLE_INPUTS
from sagaworks.workflows.document import DocumentPipeline
from sagaworks.workflows.document_batch import DocumentBatch
from tests.corpus import store_documents
from tests.documents import GOOD_SAMPLES, SAMPLES, PoisonAwareProvider, start_document
from tests.encryption import TEST_ENV
from tests.mcp_scenarios import MCP_SCENARIOS
from tests.orders import make_order, reset_after, start_order, wait_for_status

HISTORIES = Path(__file__).parent / "histories"
FEEDS = SAMPLE_INPUTS / "feeds"
ENCRYPTED = "encrypted"
"""The subfolder of histories recorded with encryption on: they replay only with the TEST keys."""
RETIRED = "retired"
"""The subfolder of histories the code no longer replays, since a patch they lack was
deprecated (docs/patches.md); ``retired/encrypted/`` for encrypted ones."""


async def record(out_dir: Path, only: str = "") -> list[Path]:
    """Run each scenario (whose name starts with ``only``) once and save its history;
    return the files written."""
    # As the samples, CLI and API start them: steps local by default (workflows/order.py
    # LOCAL_STEPS_PATCH; the remote-step histories recorded before it stay beside them).
    orders = {
        "order_completed": make_order(local_steps=None),
        "order_compensated": make_order(
            local_steps=None, inject_failure={"step": "create_shipping_label", "mode": "permanent"}
        ),
        "order_cancelled": make_order(local_steps=None, step_delay_seconds=1),
        "order_retried": make_order(local_steps=None, inject_failure={"step": "charge_payment", "mode": "transient"}),
        "order_unknown_sku": make_order(
            local_steps=None, items=[{"sku": "NOPE-9", "quantity": 1, "unit_price_cents": 100}]
        ),
    }
    written: list[Path] = []
    task_queue = f"record-{uuid.uuid4()}"
    async with await start_embedded() as env:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            db = Database(f"sqlite:///{folder}/app.db")
            poisoned = folder / "poisoned.txt"
            poisoned.write_text("A document with POISON in it, which the model refuses.")
            # Runs since workflows/document.py FINALISE_PATCH (the document_{completed,
            # rejected,compensated}.json recorded before it are retired since it is deprecated).
            documents: dict[str, tuple[Path, dict[str, int]]] = {
                "document_finalised_completed": (SAMPLES / "durable-execution.txt", {}),
                "document_finalised_rejected": (SAMPLES / "bad-encrypted.pdf", {}),
                "document_finalised_failed": (poisoned, {}),
                "document_finalised_relative_path": (Path("saga-pattern.md"), {}),
                # Since EXTRACT_GROUPS_PATCH: several extraction activities of several chunks.
                "document_grouped_completed": (
                    SAMPLES / "saga-pattern.md",
                    {"chunk_size": 300, "chunks_per_activity": 3, "extract_window": 1},
                ),
            }
            # relative paths: under SAMPLES; the poisoned document's extraction fails for good
            settings = DocumentSettings(roots=(SAMPLES, folder, FEEDS), extractor=PoisonAwareProvider())
            async with running_worker(
                env.client,
                db,
                task_queue=task_queue,
                activity_threads=4,
                settings=[settings],
            ):
                for name, order in orders.items():
                    if not name.startswith(only):
                        continue
                    handle = await start_order(env.client, task_queue, order)
                    if name == "order_cancelled":
                        await wait_for_status(handle, lambda s: s.done >= 2)
                        await handle.cancel()
                    written.append(await _save(handle, new_history_path(out_dir, name)))
                if "order_reset_cancelled".startswith(only):
                    written.append(
                        await _record_reset(env.client, task_queue, new_history_path(out_dir, "order_reset_cancelled"))
                    )
                for name, (path, options) in documents.items():
                    if not name.startswith(only):
                        continue
                    document = (
                        await start_document(env.client, task_queue, path, **options)
                        if path.is_absolute()
                        else (
                            await env.client.start_workflow(
                                DocumentPipeline.run,
                                DocumentInput(path=str(path)),
                                id=f"document-relative-{path.stem}",
                                task_queue=task_queue,
                            )
                        )
                    )
                    written.append(await _save(document, new_history_path(out_dir, name)))
                if "document_batch_stored_listing".startswith(only):
                    written.append(await _record_batch(env.client, task_queue, folder, out_dir))
                for name, scenario in MCP_SCENARIOS.items():
                    if name.startswith(only):
                        written.append(
                            await _save(await scenario(env.client, task_queue), new_history_path(out_dir, name))
                        )
                written += await record_restarts(env.client, task_queue, db, out_dir, only)
                if not only:
                    written += await record_catalog_demos(env.client, task_queue, out_dir)
            written += await record_encrypted(env, db, out_dir / ENCRYPTED, only)
            db.dispose()
        written += await record_plans(env.client, out_dir, only)
        if "plan_semantic_llm".startswith(only):
            written.append(await record_plan_llm(env.client, new_history_path(out_dir, "plan_semantic_llm")))
    return written


async def record_plans(client: Client, out_dir: Path, only: str = "") -> list[Path]:
    """Plan analyses: completed, mitigated (four risks), aborted (CRITICAL), restarted from
    a step (the stages before financial reused from the memo)."""
    from tests.plans import make_plan, plan_settings, plan_worker, start_plan

    plans = {
        "plan_completed": make_plan("plan-bueno"),
        "plan_mitigated": make_plan("plan-breve"),
        "plan_aborted": make_plan("plan-corrupto"),
    }
    written: list[Path] = []
    restart = "plan_restarted".startswith(only)
    if not restart and not any(name.startswith(only) for name in plans):
        return written
    task_queue = f"record-{uuid.uuid4()}"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/app.db")
        async with plan_worker(client, db, task_queue, plan_settings()):
            for name, plan in plans.items():
                if name.startswith(only):
                    handle = await start_plan(client, task_queue, plan)
                    written.append(await _save(handle, new_history_path(out_dir, name)))
                elif restart and name == "plan_completed":
                    await (await start_plan(client, task_queue, plan)).result()  # the restart's source
            if restart:
                source = f"plan-{plans['plan_completed'].plan_id}"
                restarted = await restart_run(client, source, "financial")
                written.append(await _save(restarted, new_history_path(out_dir, "plan_restarted")))
        db.dispose()
    return written


RESTARTS: dict[str, tuple[str, str, Path | str | dict[str, Any]]] = {
    "restarted_document": ("document", "extract", SAMPLES / "saga-pattern.docx"),
    "restarted_query": ("query", "data", "queries/temperature-by-month.json"),
    "restarted_blog": ("blog", "draft", "blog/sagas.json"),
    "restarted_news_digest": (
        "news-digest",
        "newsletter",
        {"name": "restarted", "feeds": [{"name": "notes", "url": str(FEEDS / "research-notes.rdf.xml")}]},
    ),
    # Families on the step runner: the reused results come from the new run's memo.
    "restarted_order": ("order", "reserve_inventory", "orders/order.json"),
    "restarted_sequential": ("sequential", "analyse", "sequential/billing-retrospective.json"),
}
"""One run per family on the step runner (plan-analysis: :func:`record_plans`), restarted at a
middle step: family, step, and the document, the family's sample or the input it runs."""


async def record_restarts(client: Client, task_queue: str, db: Database, out_dir: Path, only: str = "") -> list[Path]:
    """Run each :data:`RESTARTS` source, restart it at its stage and save the new run's history."""
    written = []
    store_documents(db)  # the blog's research reads stored chunks
    for name, (family_name, stage, source) in RESTARTS.items():
        if not name.startswith(only):
            continue
        fam = registry().family(family_name)
        if isinstance(source, Path):
            handle = await start_document(client, task_queue, source)
        else:
            request = fam.parse(source) if isinstance(source, dict) else fam.sample_input(source, uuid.uuid4().hex[:8])
            handle = await start_run(client, fam, request, task_queue=task_queue)
        await handle.result()
        written.append(await _save(await restart_run(client, handle.id, stage), new_history_path(out_dir, name)))
    return written


async def record_plan_llm(client: Client, path: Path) -> Path:
    """A plan analysis whose semantic stage has an LLM pass (a local chat-completions server
    answering tests/plans.py SEMANTIC_ANSWER): workflows/plan_analysis.py SEMANTIC_LLM_PATCH."""
    import json

    from tests.fake_chat_server import completion, fake_chat_server
    from tests.plans import SEMANTIC_ANSWER, llm_plan_settings, make_plan, plan_worker, start_plan

    task_queue = f"record-{uuid.uuid4()}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_chat_server(lambda _body, _index: (200, {}, completion(json.dumps(SEMANTIC_ANSWER)))) as chat,
    ):
        db = Database(f"sqlite:///{tmp}/app.db")
        async with plan_worker(client, db, task_queue, llm_plan_settings(chat.base_url)):
            saved = await _save(await start_plan(client, task_queue, make_plan("plan-bueno")), path)
        db.dispose()
    return saved


def new_history_path(out_dir: Path, name: str, today: date | None = None) -> Path:
    """A file for scenario ``name`` that does not exist yet, nor among the retired histories
    beside it (``retired/``, docs/patches.md): a name is never given to two histories."""
    candidate = out_dir / f"{name}.json"
    stamp = (today or date.today()).strftime("%Y%m%d")
    counter = 1
    retired = (out_dir.parent if out_dir.name == ENCRYPTED else out_dir) / RETIRED
    while (
        candidate.exists()
        or (retired / candidate.relative_to(out_dir.parent if out_dir.name == ENCRYPTED else out_dir)).exists()
    ):
        suffix = stamp if counter == 1 else f"{stamp}-{counter}"
        candidate = out_dir / f"{name}-{suffix}.json"
        counter += 1
    return candidate


async def record_encrypted(env: WorkflowEnvironment, db: Database, out_dir: Path, only: str = "") -> list[Path]:
    """Order sagas run by a worker and client that encrypt with the TEST keys."""
    orders = {
        name: order
        for name, order in {
            "order_completed": make_order(),
            "order_compensated": make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"}),
        }.items()
        if name.startswith(only)
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    address = env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=data_converter(TEST_ENV))
    task_queue = f"record-encrypted-{uuid.uuid4()}"
    async with running_worker(client, db, task_queue=task_queue, activity_threads=4):
        return [
            await _save(await start_order(client, task_queue, order), new_history_path(out_dir, name))
            for name, order in orders.items()
        ]


async def _record_batch(client: Client, task_queue: str, folder: Path, out_dir: Path) -> Path:
    """The first run of a batch of three documents, two per run (workflows/document_batch.py
    STORED_LISTING: its listing stored, read a page at a time, then continue-as-new)."""
    batch = folder / "batch"
    batch.mkdir()
    for sample in GOOD_SAMPLES[:3]:
        (batch / sample.name).write_bytes(sample.read_bytes())
    handle = await client.start_workflow(
        DocumentBatch.run,
        BatchInput(folder=str(batch), max_in_flight=2, documents_per_run=2),
        id=f"batch-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await handle.result()
    first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    path = new_history_path(out_dir, "document_batch_stored_listing")
    path.write_text((await first.fetch_history()).to_json())
    return path


async def _record_reset(client: Client, task_queue: str, path: Path) -> Path:
    """A completed order reset to just after reserve_inventory, cancelled before step 5."""
    first = await start_order(client, task_queue, make_order(step_delay_seconds=2))
    await first.result()
    again = await reset_after(client, first.id, "reserve_inventory")
    await again.cancel()
    return await _save(again, path)


async def record_catalog_demos(client: Client, task_queue: str, out_dir: Path) -> list[Path]:
    """Every family's demo samples (workflows/catalog.py), as ``<family>_<sample>.json``:
    a family added to the catalog gets recorded histories without touching this file."""
    written = []
    suffix = uuid.uuid4().hex[:8]
    for fam in registry().demo_order():
        for demo in fam.demo:
            handle = await start_run(client, fam, fam.sample_input(demo.sample, suffix), task_queue=task_queue)
            for update in demo.updates:  # routing's approval, a ticket's assign and resolve
                await send_demo_update(handle, update)
            path = new_history_path(out_dir, f"{fam.name}_{Path(demo.sample).stem}")
            if demo.expect == "RUNNING":  # a long-lived run (an open ticket): record it as the demo shows it
                await progress_at(handle, demo.shown_at)
                path.write_text((await handle.fetch_history()).to_json())
                await handle.terminate("recorded")
                written.append(path)
            else:
                written.append(await _save(handle, path))
    return written


def record_into(
    record_fn: Callable[[Path, str], Coroutine[Any, Any, list[Path]]], argv: list[str], *, scenarios: bool = False
) -> None:
    """``python -m tests.record_* [DIR]``: record into DIR (default tests/histories/), print
    each file; with ``scenarios``, ``--only NAME_PREFIX`` records only the scenarios so named.

    An option it does not know (``--help`` among them) is refused before anything is
    recorded, never taken for DIR."""
    main = sys.modules["__main__"]
    parser = argparse.ArgumentParser(prog=f"python -m tests.{Path(sys.argv[0]).stem}", description=main.__doc__)
    parser.add_argument("dir", nargs="?", type=Path, default=HISTORIES, help="where to write (tests/histories/)")
    if scenarios:
        parser.add_argument("--only", default="", metavar="NAME_PREFIX", help="only the scenarios whose name starts so")
    args = parser.parse_args(argv)
    target: Path = args.dir
    only: str = getattr(args, "only", "")
    target.mkdir(parents=True, exist_ok=True)
    for file in asyncio.run(record_fn(target, only)):
        print(file)
    # Every file is written and every server, worker and folder closed. The interpreter's
    # own finalization can still abort in a native extension (PyGILState_Release, seen after
    # the query recorder on Python 3.11, not reproduced in isolation), which would fail
    # `make histories` after its work is done: skip finalization.
    sys.stdout.flush()
    os._exit(0)


async def _save(handle: WorkflowHandle[Any, Any], path: Path) -> Path:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    path.write_text((await handle.fetch_history()).to_json())
    return path


if __name__ == "__main__":
    record_into(record, sys.argv[1:], scenarios=True)
