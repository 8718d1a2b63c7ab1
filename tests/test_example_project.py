"""A team's own project on an installed sagaworks, with no fork: the wheel and
examples/trip-booking installed into a fresh virtual environment (no editable install, run
from outside the repository), served by ``saga worker``, driven by ``saga``, the HTTP API and
the console.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.ports import free_port
from tests.test_ui import CHROMIUM, CHROMIUM_ARGS
from tests.wheels import sagaworks_wheel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trip-booking"


@dataclass
class Project:
    """The installed example: its virtual environment, working folder and settings."""

    venv: Path
    folder: Path
    env: dict[str, str]

    def saga(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.venv / "bin" / "saga"), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"saga {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, family: str, data: dict[str, Any]) -> str:
        """Start a run with ``saga run FAMILY -i FILE --json``; its workflow id."""
        path = self.folder / f"input-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(data))
        return json.loads(self.saga("run", family, "-i", str(path), "--json").stdout)["workflow_id"]

    def status(self, workflow_id: str) -> dict[str, Any]:
        return json.loads(self.saga("status", workflow_id, "--json").stdout)

    def wait_for(self, workflow_id: str, condition: Any, what: str, timeout: float = 90) -> dict[str, Any]:
        """Re-read the run's status until ``condition(status)`` holds (each read is a query
        answered by the worker, so a wait ends as soon as the run gets there)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(workflow_id)
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{workflow_id} never got {what}: {status}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, dev_env: WorkflowEnvironment) -> Iterator[Project]:
    dev_address = dev_env.client.service_client.config.target_host
    base = tmp_path_factory.mktemp("own-project")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    folder = base / "trip-booking"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    # The engine's own dependencies only: the example needs none of the built-in families' extras.
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(sagaworks_wheel()), str(folder)],
        cwd=base,
        timeout=900,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SAGAWORKS_", "TEMPORAL_", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env.update(
        TEMPORAL_ADDRESS=dev_address,
        SAGAWORKS_TASK_QUEUE=f"trips-{uuid.uuid4().hex[:8]}",
        DATABASE_URL=f"sqlite:///{base / 'app.db'}",
        SAGAWORKS_WORKFLOW_RUNNER="sandboxed",
        SAGAWORKS_STATE_DIR=str(base / "state"),
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
    )
    yield Project(venv, folder, env)


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[subprocess.Popen[bytes]]:
    log = open(project.folder / "worker.log", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [str(project.venv / "bin" / "saga"), "worker"],
        cwd=project.folder,
        env=project.env,
        stdout=log,
        stderr=log,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def trip(**fields: Any) -> dict[str, Any]:
    return {
        "trip_id": uuid.uuid4().hex[:8],
        "traveller": "ann@example.com",
        "hotel": "Hotel Sacher",
        "flight": "OS 123",
        "amount_cents": 125_000,
        **fields,
    }


def test_the_installed_wheel_brings_only_the_sagaworks_import_name(project: Project) -> None:
    site = next((project.venv / "lib").glob("python*/site-packages"))
    record = next(site.glob("sagaworks-*.dist-info")) / "RECORD"
    # Console scripts are recorded relative to site-packages (../../../bin/saga): not modules.
    top = {
        line.split("/", 1)[0].split(",", 1)[0] for line in record.read_text().splitlines() if not line.startswith("../")
    }
    assert {name for name in top if not name.endswith(".dist-info")} == {"sagaworks"}


def test_the_catalog_lists_the_projects_families(project: Project) -> None:
    listed = project.saga("catalog").stdout
    assert "trip" in listed and "publishing" in listed


def test_a_trip_completes(project: Project, worker: Any) -> None:
    workflow_id = project.start("trip", trip())
    result = json.loads(project.saga("result", workflow_id, "--json").stdout)
    assert set(result["result"]["references"]) == {"reserve_hotel", "book_flight", "charge_card", "send_confirmation"}


def test_a_trip_failing_at_the_card_undoes_flight_and_hotel_in_reverse(project: Project, worker: Any) -> None:
    workflow_id = project.start("trip", trip(fail_at="charge_card"))
    failed = project.saga("result", workflow_id, "--json", check=False)
    assert failed.returncode == 1
    outcome = json.loads(failed.stdout)
    assert outcome["status"] == "FAILED"
    status = project.status(workflow_id)
    assert status["progress"]["state"] == "failed"
    undone = [(c["step"], c["outcome"]) for c in status["progress"]["compensations"]]
    assert undone == [("charge_card", "compensated"), ("book_flight", "compensated"), ("reserve_hotel", "compensated")]
    trace = project.saga("trace", workflow_id).stdout
    assert "cancel_flight" in trace and "cancel_hotel" in trace


def test_a_cancelled_trip_compensates(project: Project, worker: Any) -> None:
    workflow_id = project.start("trip", trip(step_delay_seconds=3))
    project.wait_for(workflow_id, lambda s: s["progress"]["done"] >= 2, "two steps done")
    project.saga("cancel", workflow_id)
    outcome = json.loads(project.saga("result", workflow_id, "--json", check=False).stdout)
    assert outcome["status"] == "CANCELED"
    progress = project.status(workflow_id)["progress"]
    assert progress["state"] == "canceled"
    undone = [(c["step"], c["outcome"]) for c in progress["compensations"]]
    assert undone[-2:] == [("book_flight", "compensated"), ("reserve_hotel", "compensated")]


def test_a_trip_restarts_from_a_step_reusing_the_ones_before(project: Project, worker: Any) -> None:
    workflow_id = project.start("trip", trip())
    first = json.loads(project.saga("result", workflow_id, "--json").stdout)["result"]
    project.saga("restart", workflow_id, "--from", "charge_card")
    again = json.loads(project.saga("result", workflow_id, "--json").stdout)["result"]
    assert again["references"]["reserve_hotel"] == first["references"]["reserve_hotel"]
    assert again["references"]["book_flight"] == first["references"]["book_flight"]
    steps = {s["step"]: s for s in project.status(workflow_id)["progress"]["steps"]}
    assert steps["reserve_hotel"]["reused"] and steps["book_flight"]["reused"]
    assert not steps["charge_card"]["reused"]


def test_the_api_starts_a_trip_and_serves_its_status_and_result(project: Project, worker: Any) -> None:
    port = free_port()
    api = subprocess.Popen(
        [str(project.venv / "bin" / "saga"), "api", "--port", str(port)],
        cwd=project.folder,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/api/catalog").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the API did not start"
            assert "trip" in {entry["name"] for entry in http.get("/api/catalog").json()}
            started = http.post("/api/workflows/trip", json=trip())
            assert started.status_code == 201, started.text
            workflow_id = started.json()["workflow_id"]
            result = http.get(f"/api/workflows/{workflow_id}/result")
            while result.status_code == 202:
                result = http.get(f"/api/workflows/{workflow_id}/result")
            assert result.status_code == 200 and set(result.json()["result"]["references"]) >= {"charge_card"}
            assert http.get(f"/api/workflows/{workflow_id}").json()["status"] == "COMPLETED"
            _console_lists(url, ("trip", "publishing"))
    finally:
        api.terminate()
        api.wait(timeout=30)


def _console_lists(url: str, names: tuple[str, ...]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            for name in names:
                assert page.get_by_role("heading", name=name, exact=True).count() == 1, page.content()
        finally:
            browser.close()


def post(**fields: Any) -> dict[str, Any]:
    return {"topic": f"durable sagas {uuid.uuid4().hex[:6]}", **fields}


def test_an_approved_post_is_published(project: Project, worker: Any) -> None:
    workflow_id = project.start("publishing", post())
    project.wait_for(workflow_id, lambda s: s["progress"].get("approval") == "pending", "to await approval")
    project.saga("approve", workflow_id, "--approver", "editor")
    result = json.loads(project.saga("result", workflow_id, "--json").stdout)["result"]
    assert result["published"] and result["decided_by"] == "editor"
    assert [t["step"] for t in project.status(workflow_id)["progress"]["steps"]] == ["draft", "review", "publish"]


def test_a_rejected_post_ends_unpublished(project: Project, worker: Any) -> None:
    workflow_id = project.start("publishing", post())
    project.wait_for(workflow_id, lambda s: s["progress"].get("approval") == "pending", "to await approval")
    refused = project.saga("reject", workflow_id, "--approver", "editor", check=False)
    assert refused.returncode != 0 and "reason" in (refused.stdout + refused.stderr)
    project.saga("reject", workflow_id, "--approver", "editor", "--reason", "off topic")
    result = json.loads(project.saga("result", workflow_id, "--json").stdout)["result"]
    assert not result["published"] and result["decided_by"] == "editor"


def test_a_missed_deadline_escalates(project: Project, worker: Any) -> None:
    workflow_id = project.start("publishing", post(deadline_seconds=2))
    escalated = project.wait_for(workflow_id, lambda s: s["progress"].get("approval") == "escalated", "escalated")
    assert escalated["progress"]["approvers"] == ["chief-editor"]
    project.saga("approve", workflow_id, "--approver", "chief-editor")
    result = json.loads(project.saga("result", workflow_id, "--json").stdout)["result"]
    assert result["published"] and "escalated to chief-editor" in result["escalation"]
