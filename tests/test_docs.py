"""The documentation follows the code: every registered family has its page naming its
workflow type, the configuration reference describes every environment variable the code
reads, and the tutorial's saga (the files docs/tutorial.md includes) runs and compensates.
`make docs` builds the site itself with --strict (broken links and references fail)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import sagaworks
from sagaworks.activities.db import Database
from sagaworks.client.runs import failure_lines, run_outcome, start_run
from sagaworks.worker import running_worker
from tests.distributions import write_dist_info
from tests.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial" / "shop"
sys.path.insert(0, str(DOCS))

import _gen  # noqa: E402  (docs/_gen.py: what the site generates from the code)


def test_every_registered_family_has_a_page_that_names_its_workflow_type() -> None:
    registry = sagaworks.registry()
    assert registry.names, "no family registered: is sagaworks installed (make install)?"
    missing = [f.name for f in registry if not _gen.family_page(f.name).exists()]
    assert not missing, f"families without a page under docs/families/: {missing}"
    for fam in registry:
        page = _gen.family_page(fam.name).read_text()
        assert f"`{fam.workflow_type}`" in page, (
            f"docs/families/{fam.name}.md does not name its workflow type {fam.workflow_type}"
        )
        assert f"<!-- generated: family {fam.name} -->" in page, (
            f"docs/families/{fam.name}.md lacks its generated facts"
        )
        nav = (ROOT / "mkdocs.yml").read_text()
        assert f"families/{fam.name}.md" in nav, f"mkdocs.yml's nav has no entry for {fam.name}"


def test_every_family_page_is_a_registered_family() -> None:
    registry = sagaworks.registry()
    known = set(registry.names) | {u.name for u in registry.unavailable}
    pages = {p.stem for p in (DOCS / "families").glob("*.md")} - {"index"}
    assert pages <= known, f"pages of families that are not registered: {sorted(pages - known)}"


def test_the_configuration_reference_describes_every_variable_the_code_reads() -> None:
    read = _gen.env_settings()
    described = _gen.descriptions()
    undescribed = sorted(set(read) - set(described))
    assert not undescribed, f"read by the code but not described in docs/configuration.toml: {undescribed}"
    gone = sorted(name for name, info in described.items() if name not in read and "read_by" not in info)
    assert not gone, f"described in docs/configuration.toml but no longer read by the code: {gone}"
    for name, info in described.items():
        assert info.get("meaning"), f"{name} has no meaning in docs/configuration.toml"


def test_the_scan_finds_variables_however_the_code_names_them() -> None:
    read = _gen.env_settings()
    # A literal, a module constant (codec.py's KEYS_ENV), a prefix the code completes.
    assert "SAGAWORKS_TASK_QUEUE" in read and read["SAGAWORKS_TASK_QUEUE"].default == "sagaworks"
    assert "SAGAWORKS_ENCRYPTION_KEYS" in read
    assert "SAGAWORKS_BREAKER_*" in read and read["SAGAWORKS_BREAKER_*"].prefix
    table = _gen.configuration_table()
    assert "**not described**" not in table
    assert "`client/connection.py`" in table


def test_the_generated_family_facts_come_from_the_registry() -> None:
    facts = _gen.family_facts("order")
    assert "`OrderFulfillmentSaga`" in facts and "`order_id`" in facts
    assert "`REJECT_DUPLICATE`" in facts
    table = _gen.families_table()
    for fam in sagaworks.registry():
        assert f"[`{fam.name}`]({fam.name}.md)" in table


# -- the tutorial ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tutorial_family() -> Iterator[sagaworks.Family]:
    """The tutorial's family, found through its entry point as `saga worker` finds it
    (once: its table is declared on the engine's shared metadata when it is imported)."""
    sys.path.insert(0, str(TUTORIAL))
    try:
        entry = importlib.metadata.EntryPoint("signup", "shop.families:SIGNUP", "sagaworks.families")
        registry = sagaworks._registry.discover([entry])
        assert not registry.broken, registry.broken
        yield registry.family("signup")
    finally:
        sys.path.remove(str(TUTORIAL))
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]


def test_the_tutorial_page_includes_the_files_the_test_runs() -> None:
    page = (DOCS / "tutorial.md").read_text()
    for name in ("models.py", "activities.py", "workflows.py", "families.py"):
        assert f'--8<-- "tutorial/shop/shop/{name}"' in page
    assert '--8<-- "tutorial/shop/pyproject.toml"' in page
    # sagaworks is installed from a checkout or a wheel: it is not on PyPI.
    for text in (page, (ROOT / "README.md").read_text(), (DOCS / "getting-started.md").read_text()):
        assert "pip install /path/to/sagaworks" in text and "pip install sagaworks " not in text


def test_the_tutorial_family_offers_its_inputs_as_samples(tutorial_family: sagaworks.Family) -> None:
    """The console's sample buttons: both JSON files, each with a fresh signup id."""
    assert [p.name for p in tutorial_family.sample_paths()] == ["signup.json", "signup-fails.json"]
    assert all(p.exists() for p in tutorial_family.sample_paths())
    fails = tutorial_family.sample_input("signup-fails.json", "abc123")
    assert fails.signup_id != "s-1002" and fails.signup_id.startswith("s-1002")
    # The fault field is one `saga restart` drops by default.
    from sagaworks.client.restart import INJECTED_FAULTS

    assert set(json.loads((TUTORIAL / "signup-fails.json").read_text())) & set(INJECTED_FAULTS) == {"inject_failure"}


async def test_the_tutorial_saga_completes_and_a_failure_compensates_in_reverse(
    tutorial_family: sagaworks.Family, dev_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    client = dev_env.client
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    model = tutorial_family.input_model
    async with running_worker(client, db, task_queue=task_queue, families=[tutorial_family], cpu_processes=0):
        ok = model.model_validate(json.loads((TUTORIAL / "signup.json").read_text()))
        ok = ok.model_copy(update={"signup_id": f"{ok.signup_id}-{task_queue[-8:]}"})
        done = await run_outcome(await start_run(client, tutorial_family, ok, task_queue=task_queue))
        assert done.status == "COMPLETED", done.failure
        assert set(done.result["references"]) == {"account", "payment", "welcome"}

        bad = model.model_validate(json.loads((TUTORIAL / "signup-fails.json").read_text()))
        bad = bad.model_copy(update={"signup_id": f"{bad.signup_id}-{task_queue[-8:]}"})
        handle = await start_run(client, tutorial_family, bad, task_queue=task_queue)
        failed = await run_outcome(handle)
        assert failed.status == "FAILED"
        assert "welcome mail" in json.dumps(failed.failure)
        assert "InjectedFailure: welcome mail to bob@example.com refused" in "\n".join(
            failure_lines(failed.failure or [])
        )
        status = await handle.query("status", result_type=sagaworks.StepStatus)
        undone = [c.step for c in status.compensations]
        assert undone == ["charge_card", "create_account"], status

    from shop.activities import SignupRecord

    with db.transaction() as session:
        rows = {r.key: r.status for r in session.query(SignupRecord).filter(SignupRecord.saga_id == bad.signup_id)}
    assert sorted(rows.values()) == [sagaworks.UNDONE, sagaworks.UNDONE], rows
    db.dispose()


def test_the_tutorial_project_runs_from_the_cli(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The tutorial's steps 5 and 6: the family found through its entry point by `saga
    catalog` and `saga worker`, a signup started with `saga run` and read with `saga result`
    (the project is made importable by PYTHONPATH and a dist-info instead of `pip install -e`)."""
    saga = str(Path(sys.executable).parent / "saga")
    site = write_dist_info(tmp_path / "site", "shop", {"signup": "shop.families:SIGNUP"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGAWORKS_", "TEMPORAL_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(TUTORIAL)]),
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        SAGAWORKS_TASK_QUEUE=f"shop-{uuid.uuid4().hex[:8]}",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        SAGAWORKS_WORKFLOW_RUNNER="sandboxed",
        SAGAWORKS_STATE_DIR=str(tmp_path / "state"),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([saga, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    listed = run("catalog")
    assert listed.returncode == 0 and "signup" in listed.stdout, listed.stdout + listed.stderr
    # `python -m sagaworks.worker` is `saga worker`.
    worker = WorkerProcess(
        env["TEMPORAL_ADDRESS"],
        env["SAGAWORKS_TASK_QUEUE"],
        env["DATABASE_URL"],
        tmp_path / "worker.log",
        PYTHONPATH=env["PYTHONPATH"],
    )
    worker.start()
    try:
        signup_id = f"cli-{uuid.uuid4().hex[:8]}"
        started = run(
            "run", "signup", "--input", str(TUTORIAL / "signup-fails.json"), "--set", f"signup_id={signup_id}", "--json"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        workflow_id = json.loads(started.stdout)["workflow_id"]
        assert workflow_id == f"signup-{signup_id}"
        result = run("result", workflow_id, "--json")
        assert result.returncode == 1, result.stdout + result.stderr + (tmp_path / "worker.log").read_text()
        outcome = json.loads(result.stdout)
        assert outcome["status"] == "FAILED" and "welcome mail" in json.dumps(outcome)
        again = run("run", "signup", "--input", str(TUTORIAL / "signup-fails.json"), "--set", f"signup_id={signup_id}")
        assert again.returncode != 0 and "already" in (again.stdout + again.stderr), again.stdout + again.stderr
        assert worker.terminate() == 0
    finally:
        worker.stop()


def test_the_api_reference_lists_every_public_name() -> None:
    block = _gen.reference_block()
    missing = [n for n in sagaworks.__all__ if n != "policies" and f"- {n}\n" not in block and f".{n}\n" not in block]
    assert not missing, f"public names the API reference leaves out: {missing}"


def test_the_readme_links_every_family_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text()
    unlinked = [f.name for f in sagaworks.registry() if f"(docs/families/{f.name}.md)" not in readme]
    assert not unlinked, f"families missing from the README's table: {unlinked}"
    assert len(readme.splitlines()) <= 200, "the README is an entry point: details go to docs/"
