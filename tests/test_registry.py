"""The registry: families found through the ``sagaworks.families`` entry points.

A project of its own registers a family the way the built-in ones are registered; here a
distribution written to a temporary folder (a dist-info with entry_points.txt beside its
package) stands for it, next to entry points that are broken in each way a plugin can be.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import types
import typing
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel
from temporalio.client import Client

from sagaworks import DemoRun, Family, registry
from sagaworks._registry import discover
from sagaworks.activities.db import Database
from sagaworks.client.api import ApiSettings
from sagaworks.client.connection import TASK_QUEUE
from sagaworks.client.demo import missing_content
from sagaworks.client.runs import Outcome
from sagaworks.worker import running_worker
from tests.apiserver import api_server
from tests.distributions import write_dist_info
from tests.workers import WorkerProcess

SAGA = str(Path(sys.executable).parent / "saga")

PLUGIN = """
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

import sagaworks


class EchoInput(BaseModel):
    text: str


@activity.defn
def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class EchoWorkflow:
    @workflow.run
    async def run(self, request: EchoInput) -> dict:
        shouted = await workflow.execute_activity(shout, request.text, start_to_close_timeout=timedelta(seconds=30))
        return {"echo": shouted}


ECHO = sagaworks.Family(
    "echo", workflow=EchoWorkflow, input_model=EchoInput, description="A text, shouted back.", activities=[shout]
)

NOT_A_FAMILY = 42


def another_order() -> sagaworks.Family:
    return sagaworks.Family("order", workflow=EchoWorkflow, input_model=EchoInput)
"""

ENTRY_POINTS = {
    "echo": "sagaworks_testfam:ECHO",
    "missing-module": "sagaworks_testfam_gone:FAMILY",
    "wrong-type": "sagaworks_testfam:NOT_A_FAMILY",
    "order": "sagaworks_testfam:another_order",
    "needs-extra": "sagaworks_testfam.heavy:FAMILY [heavy]",
}


def write_plugin(root: Path) -> Path:
    """A distribution ``sagaworks-testfam`` as an installer would leave it in site-packages."""
    package = root / "sagaworks_testfam"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    # Its optional dependency is not installed: importing the family fails on it.
    (package / "heavy.py").write_text("import no_such_dependency_of_sagaworks_tests  # noqa: F401\n")
    return write_dist_info(root, "sagaworks-testfam", ENTRY_POINTS)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test distribution on sys.path, and a registry discovered afresh with it."""
    root = write_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    registry.cache_clear()
    yield root
    registry.cache_clear()
    for name in [m for m in sys.modules if m.startswith("sagaworks_testfam")]:
        del sys.modules[name]


def test_a_registered_family_is_found_and_broken_entries_are_reported_and_skipped(plugin: Path) -> None:
    found = discover()
    assert "echo" in found.names
    assert found.family("echo").distribution == "sagaworks-testfam"
    assert found.family("echo").workflow_type == "EchoWorkflow"
    # Every built-in family is still there: no broken plugin takes them down.
    assert {"order", "document", "query", "support-ticket"} <= set(found.names)
    assert found.family("order").distribution == "sagaworks"  # the name was taken first
    broken = {entry.entry.split(" = ")[0]: entry.error for entry in found.broken}
    assert set(broken) == {"missing-module", "wrong-type", "order"}
    assert "sagaworks_testfam_gone" in broken["missing-module"]
    assert "not a sagaworks.Family" in broken["wrong-type"]
    assert "already registered by sagaworks" in broken["order"]
    (unavailable,) = found.unavailable
    assert unavailable.name == "needs-extra"
    assert unavailable.missing == "no_such_dependency_of_sagaworks_tests"
    assert unavailable.install == "pip install 'sagaworks-testfam[heavy]'"
    with pytest.raises(KeyError, match="unavailable here.*pip install 'sagaworks-testfam\\[heavy\\]'"):
        found.family("needs-extra")


def test_a_family_requiring_a_missing_module_is_unavailable_with_its_extra() -> None:
    declared: Family[Any] = Family(
        "needs-ocr", workflow="x:Y", input_model="x:Z", extra="ocr", requires=("json", "no_such_ocr_module_here")
    )
    assert declared.missing_modules() == ["no_such_ocr_module_here"]
    assert declared.install_command() == "pip install 'sagaworks[ocr]'"


def test_the_llm_steps_are_a_sequence_of_names_not_one_string() -> None:
    assert Family("asks", workflow="x:Y", input_model="x:Z", llm_steps=["summarise"]).llm_steps == ("summarise",)
    with pytest.raises(
        TypeError, match="llm_steps of 'asks' must be a sequence of step names, not the string 'summarise'"
    ):
        Family("asks", workflow="x:Y", input_model="x:Z", llm_steps="summarise")


async def _saga(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        SAGA, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


@pytest_asyncio.fixture
async def plugin_worker(plugin: Path, dev_client: Client, db: Database) -> AsyncIterator[None]:
    """A worker of every registered family (the plugin's too) on the CLI's task queue."""
    async with running_worker(dev_client, db, task_queue=TASK_QUEUE, activity_threads=4, cpu_processes=0):
        yield


async def test_saga_catalog_and_run_serve_a_family_registered_by_another_distribution(
    plugin: Path, plugin_worker: None, dev_address: str, tmp_path: Path
) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_address, "PYTHONPATH": str(plugin)}
    catalog = await _saga(env, "catalog")
    assert catalog.returncode == 0, catalog.stderr
    assert "echo  (EchoWorkflow)" in catalog.stdout
    assert "needs-extra  (unavailable: no_such_dependency_of_sagaworks_tests not installed)" in catalog.stdout
    assert "pip install 'sagaworks-testfam[heavy]'" in catalog.stdout
    for name in ("missing-module", "wrong-type", "order = sagaworks_testfam:another_order"):
        assert f"skipped the family entry point {name}" in catalog.stderr
    assert "Traceback" not in catalog.stderr

    listed = json.loads((await _saga(env, "catalog", "--json")).stdout)
    echo = next(entry for entry in listed if entry["name"] == "echo")
    assert echo["input_schema"]["properties"] == {"text": {"title": "Text", "type": "string"}}
    assert {
        "name": "needs-extra",
        "unavailable": "no_such_dependency_of_sagaworks_tests not installed",
        "install": "pip install 'sagaworks-testfam[heavy]'",
    } in listed

    missing = await _saga(env, "run", "needs-extra")
    assert missing.returncode == 2 and "pip install 'sagaworks-testfam[heavy]'" in missing.stderr

    request = tmp_path / "echo.json"
    request.write_text('{"text": "hello"}')
    run = await _saga(env, "run", "echo", "--input", str(request), "--wait", "--json")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "COMPLETED" and answer["result"] == {"echo": "HELLO"}
    assert answer["workflow_id"].startswith("echo-")
    status = json.loads((await _saga(env, "status", answer["workflow_id"], "--json")).stdout)
    assert status["family"] == "echo"


async def test_the_api_starts_a_family_registered_by_another_distribution(
    plugin: Path, dev_client: Client, dev_address: str, db: Database, task_queue: str, tmp_path: Path
) -> None:
    settings = ApiSettings(task_queue=task_queue, address=dev_address, database_url=f"sqlite:///{tmp_path / 'api.db'}")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, cpu_processes=0):
        with api_server(settings) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
                assert "echo" in [entry["name"] for entry in (await http.get("/api/catalog")).json()]
                started = await http.post("/api/workflows/echo", json={"text": "api"})
                assert started.status_code == 201, started.text
                workflow_id = started.json()["workflow_id"]
                await dev_client.get_workflow_handle(workflow_id).result()
                result = await http.get(f"/api/workflows/{workflow_id}/result")
                assert result.status_code == 200, result.text
                assert result.json()["result"] == {"echo": "API"}
                assert (await http.get(f"/api/workflows/{workflow_id}")).json()["family"] == "echo"


def test_importing_the_cli_and_listing_the_catalog_load_no_temporal_client_and_no_family() -> None:
    probe = textwrap.dedent("""
        import contextlib, io, json, sys
        import sagaworks.client.cli as cli
        loaded = {"import": sorted(sys.modules)}
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.app(["catalog"])
            except SystemExit:
                pass
        loaded["catalog"] = sorted(sys.modules)
        print(json.dumps(loaded))
    """)
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    for moment, modules in loaded.items():
        assert "temporalio.client" not in modules, moment
        family_code = [
            m
            for m in modules
            if m.startswith(("sagaworks.workflows.", "sagaworks.activities.", "sagaworks.contracts."))
            and m != "sagaworks.workflows.catalog"  # the built-in declarations: names and strings only
        ]
        assert family_code == [], (moment, family_code)


def test_a_demo_result_must_hold_what_the_demo_declares() -> None:
    digest = DemoRun("news-digest/weekly.json", result_has=("stored", "articles", "newsletter.markdown"))
    assert digest.missing_from({"stored": False, "articles": [], "newsletter": None}) == list(digest.result_has)
    assert digest.missing_from({"stored": True, "articles": [{"title": "x"}], "newsletter": {"markdown": ""}}) == [
        "newsletter.markdown"
    ]
    assert digest.missing_from({"stored": True, "articles": [{}], "newsletter": {"markdown": "# News"}}) == []
    # A run that completed empty fails the demo; a failure it expected is judged by its status.
    assert missing_content(digest, Outcome("news-digest-weekly", "COMPLETED", result={"articles": []})) == [
        "stored",
        "articles",
        "newsletter.markdown",
    ]
    assert missing_content(digest, Outcome("news-digest-weekly", "FAILED")) == []


def test_the_news_digest_demo_fails_a_run_whose_every_feed_failed() -> None:
    (demo,) = registry().family("news-digest").demo
    failed = {"status": "unavailable", "activity": "cached_feed", "error": "HTTP 503"}
    read = {"status": "ok", "activity": "fetch_feed"}
    assert demo.missing_from({"feeds": {"a": failed, "b": failed}, "articles": []}) == [demo.result_means]
    # Nothing new since the last digest is not a failure: a feed was read.
    assert demo.missing_from({"feeds": {"a": failed, "b": read}, "articles": []}) == []


def _field_type(model: typing.Any, path: str) -> typing.Any:
    """The type ``path`` reaches through ``model``'s fields (raises naming a missing field)."""
    current = model
    for part in path.split("."):
        while typing.get_origin(current) in (typing.Union, types.UnionType):
            current = next(arg for arg in typing.get_args(current) if arg is not type(None))
        if part.isdigit():
            current = typing.get_args(current)[0]
            continue
        assert isinstance(current, type) and issubclass(current, BaseModel), f"{path}: {part} is not in a model"
        assert part in current.model_fields, f"{path}: {current.__name__} has no field {part}"
        current = current.model_fields[part].annotation
    return current


@pytest.mark.parametrize("fam", registry().families, ids=lambda f: f.name)
def test_every_completing_demo_says_what_its_result_must_contain(fam: Family) -> None:
    # Every family's workflow class has its @workflow.run method named run.
    result_model = typing.get_type_hints(fam.workflow.run)["return"]  # type: ignore[attr-defined]
    for demo in fam.demo:
        if demo.expect != "COMPLETED":
            continue
        assert demo.result_has and demo.result_means, f"{fam.name} {demo.sample}: what must its result contain?"
        for path in demo.result_has:
            _field_type(result_model, path)


def test_saga_worker_takes_the_options_of_the_worker_module() -> None:
    shown = subprocess.run([SAGA, "worker", "--help"], capture_output=True, text=True, check=True).stdout
    assert shown.startswith("usage: saga worker")
    for option in (
        "--dev",
        "--task-queue",
        "--activity-threads",
        "--cpu-processes",
        "--workflow-runner",
        "--drain-seconds",
    ):
        assert option in shown
    refused = subprocess.run([SAGA, "worker", "--no-such-option"], capture_output=True, text=True)
    assert refused.returncode == 2 and "unrecognized arguments: --no-such-option" in refused.stderr


def test_importing_sagaworks_loads_neither_the_sdk_nor_a_family() -> None:
    probe = "import sys, sagaworks; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    heavy = [
        m for m in loaded if m.split(".")[0] in ("temporalio", "pydantic", "sqlalchemy") or m.startswith("sagaworks.")
    ]
    assert heavy == []


async def test_the_worker_process_serves_a_registered_family_and_reports_the_broken_ones(
    plugin: Path, dev_client: Client, dev_address: str, task_queue: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        dev_address,
        task_queue,
        f"sqlite:///{tmp_path / 'app.db'}",
        tmp_path / "worker.log",
        PYTHONPATH=str(plugin),
    )
    worker.start()
    try:
        result = await dev_client.execute_workflow(
            "EchoWorkflow",
            {"text": "worker"},
            id=f"echo-{task_queue}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=120),
        )
        assert result == {"echo": "WORKER"}
        log = worker.log_file.read_text()
        assert "echo" in next(line for line in log.splitlines() if "for the families" in line)
        for name in ("missing-module", "wrong-type", "order = sagaworks_testfam:another_order"):
            assert f"Skipped the family entry point {name}" in log
        assert "Not serving the family needs-extra: no_such_dependency_of_sagaworks_tests is not installed" in log
        assert worker.terminate() == 0
    finally:
        worker.stop()


def test_a_family_whose_activity_name_another_family_serves_with_other_code_is_not_served(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A task queue knows an activity by its name alone: a family that reuses a name for code
    of its own would have the other family's activity run in its place (or its own in the
    other's), so the later family is reported and left out, and the first keeps its own."""
    from temporalio import activity

    from sagaworks import WorkerResources
    from sagaworks.worker import worker_parts

    @activity.defn(name="draft_post")
    def my_draft(text: str) -> str:
        return text

    blog = registry().family("blog")
    mine = Family("publishing", workflow=blog.workflow, input_model=blog.input_model, activities=[my_draft])
    shared = Family("blog-again", workflow=blog.workflow, input_model=blog.input_model, activities=blog.activities)
    parts = worker_parts([blog, mine, shared], WorkerResources(db=db))
    served = {getattr(a, "__name__", ""): a for a in parts.activities}
    assert "my_draft" not in served and "draft_post" in served
    assert "Not serving the family publishing" in caplog.text and "draft_post (also blog's)" in caplog.text
    # The same code under the same name is one activity served once, not a clash.
    assert "Not serving the family blog-again" not in caplog.text
