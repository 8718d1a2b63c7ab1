"""The HTTP API against the real dev server, with a real worker and a real uvicorn server."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from markupsafe import escape

from sagaworks import registry
from sagaworks._breakers import BreakerConfig, Breakers
from sagaworks.activities.db import Database
from sagaworks.client.api import ApiSettings
from sagaworks.client.api.security import SESSION_COOKIE, session_value
from sagaworks.client.api.server import bind_address
from sagaworks.client.workers import fresh_pollers
from sagaworks.workflows.catalog import SAMPLES
from tests.apiserver import RunningApi, api_server, read_events
from tests.orders import make_order

TOKEN = "test-token-" + uuid.uuid4().hex


@pytest.fixture
def api(dev_address: str, task_queue: str, tmp_path: Path) -> Iterator[RunningApi]:
    # No metrics cache: tests wait for metrics to show what they just did.
    settings = ApiSettings(
        token=TOKEN,
        task_queue=task_queue,
        address=dev_address,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        metrics_cache_seconds=0,
    )
    with api_server(settings) as running:
        yield running


@pytest_asyncio.fixture
async def http(api: RunningApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        yield client


def order_body(**overrides: Any) -> dict[str, Any]:
    return make_order(**overrides).model_dump(mode="json")


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """Ask ``check`` until it returns something truthy (visibility and queries lag a little)."""

    async def poll() -> Any:
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value

    return await asyncio.wait_for(poll(), timeout)


async def start(http: httpx.AsyncClient, **overrides: Any) -> str:
    response = await http.post("/api/workflows/order", json=order_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()["workflow_id"]


async def result_of(http: httpx.AsyncClient, workflow_id: str) -> httpx.Response:
    async def closed() -> httpx.Response | None:
        response = await http.get(f"/api/workflows/{workflow_id}/result")
        return None if response.status_code == 202 else response

    return await eventually(closed)


async def progress(
    http: httpx.AsyncClient, workflow_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        state = (await http.get(f"/api/workflows/{workflow_id}")).json()["progress"]
        return state if isinstance(state, dict) and predicate(state) else None

    return await eventually(check)


async def test_start_status_and_result(http: httpx.AsyncClient, order_worker: Any) -> None:
    body = order_body()
    response = await http.post("/api/workflows/order", json=body)
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["workflow_id"] == f"order-{body['order_id']}" and started["run_id"]
    assert started["ui"].endswith(f"/workflows/{started['workflow_id']}/{started['run_id']}/history")
    assert response.headers["location"] == f"/api/workflows/{started['workflow_id']}"

    final = await result_of(http, started["workflow_id"])
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "COMPLETED"
    assert final.json()["result"]["order_id"] == body["order_id"]
    assert set(final.json()["result"]["references"]) >= {"charge_payment", "create_shipping_label"}

    status = (await http.get(f"/api/workflows/{started['workflow_id']}")).json()
    assert status["status"] == "COMPLETED" and status["family"] == "order" and status["type"] == "OrderFulfillmentSaga"
    assert status["progress"]["state"] == "completed" and status["progress"]["done"] == 5

    report = (await http.get(f"/api/workflows/{started['workflow_id']}/trace", params={"payloads": "true"})).json()
    trace = report["trace"]
    assert trace["status"] == "COMPLETED" and report["risks"] is None  # an order has no risk view
    steps = {step["name"]: step for step in trace["steps"]}
    assert steps["charge_payment"]["outcome"] == "completed"
    assert steps["charge_payment"]["result"]["reference"] == final.json()["result"]["references"]["charge_payment"]


async def test_result_is_202_while_running(http: httpx.AsyncClient) -> None:
    # No worker: the run stays RUNNING.
    workflow_id = await start(http)
    response = await http.get(f"/api/workflows/{workflow_id}/result")
    assert response.status_code == 202
    assert response.json() == {"workflow_id": workflow_id, "status": "RUNNING"}
    await http.post(f"/api/workflows/{workflow_id}/cancel")


async def test_failed_run_result_is_409_with_the_failure_chain(http: httpx.AsyncClient, order_worker: Any) -> None:
    workflow_id = await start(http, inject_failure={"step": "reserve_inventory", "mode": "permanent"})
    final = await result_of(http, workflow_id)
    assert final.status_code == 409
    body = final.json()
    assert body["status"] == "FAILED" and body["error"]["type"] == "RunFailed"
    assert body["failure"][0]["type"] == "SagaCompensated"
    assert any("reserve_inventory" in entry["message"] for entry in body["failure"])


async def test_duplicate_order_is_409(http: httpx.AsyncClient) -> None:
    body = order_body()
    assert (await http.post("/api/workflows/order", json=body)).status_code == 201
    again = await http.post("/api/workflows/order", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "RunConflict"
    assert body["order_id"] in again.json()["error"]["message"]
    await http.post(f"/api/workflows/order-{body['order_id']}/cancel")


async def test_bad_input_is_422_naming_the_field_and_starts_nothing(http: httpx.AsyncClient) -> None:
    body = order_body()
    body["items"][1]["quantity"] = "2"
    response = await http.post("/api/workflows/order", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "InvalidRequest" and error["field"] == "items.1.quantity"
    assert "items.1.quantity" in error["message"]
    assert "Traceback" not in response.text
    missing = await http.post("/api/workflows/order", json={k: v for k, v in body.items() if k != "customer_email"})
    assert missing.json()["error"]["field"] == "customer_email"
    not_json = await http.post(
        "/api/workflows/order", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["error"]["type"] == "InvalidRequest"
    not_utf8 = await http.post("/api/workflows/order", content=b"\xff{", headers={"Content-Type": "application/json"})
    assert not_utf8.status_code == 422 and not_utf8.json()["error"]["field"] == "body"
    assert (await http.get(f"/api/workflows/order-{body['order_id']}")).status_code == 404


async def test_unknown_family_and_run_are_404(http: httpx.AsyncClient) -> None:
    unknown = await http.post("/api/workflows/nope", json={})
    assert unknown.status_code == 404 and "order" in unknown.json()["error"]["message"]
    missing = await http.get("/api/workflows/order-does-not-exist")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"


async def test_token_is_required(api: RunningApi) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as anonymous:
        for method, path in [("GET", "/api/catalog"), ("GET", "/api/workflows"), ("POST", "/api/workflows/order")]:
            response = await anonymous.request(method, path, json=order_body() if method == "POST" else None)
            assert response.status_code == 401, path
            assert response.json()["error"]["type"] == "Unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = await anonymous.get("/api/catalog", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        # Health is for probes: it answers without the token.
        assert (await anonymous.get("/api/health")).status_code in (200, 503)
        # The console sends an anonymous browser to sign in, then the cookie opens it.
        page = await anonymous.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await anonymous.post("/login", json={"token": "nope"})).status_code == 401
        signed_in = await anonymous.post("/login", json={"token": TOKEN})
        assert signed_in.status_code == 200
        assert (await anonymous.get("/")).status_code == 200
        assert (await anonymous.get("/api/catalog")).status_code == 200
        # The cookie holds a value derived from the token (an HMAC), never the token itself.
        [cookie] = [c for c in anonymous.cookies.jar if c.name == SESSION_COOKIE]
        assert cookie.value == session_value(TOKEN) and TOKEN not in signed_in.headers["set-cookie"]
        assert (
            "httponly" in signed_in.headers["set-cookie"].lower()
            and "samesite=strict" in signed_in.headers["set-cookie"].lower()
        )
    # The token as a cookie, or a session value of another token, opens nothing.
    for forged in (TOKEN, session_value(TOKEN + "x")):
        async with httpx.AsyncClient(base_url=api.url, timeout=60, cookies={SESSION_COOKIE: forged}) as other:
            assert (await other.get("/api/catalog")).status_code == 401
            assert (await other.get("/", follow_redirects=False)).status_code == 303


async def test_bodies_over_the_cap_are_413(http: httpx.AsyncClient, api: RunningApi) -> None:
    cap = api.settings.max_body_bytes
    assert cap == 2 * 2**20
    big = order_body(shipping_address="x" * 400)
    padding = {"note": "y" * cap}
    response = await http.post(
        "/api/workflows/order",
        content=json.dumps({**big, **padding}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["type"] == "PayloadTooLarge"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b" " * (cap // 2 + 1)

    streamed = await http.post("/api/workflows/order", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["type"] == "PayloadTooLarge"


async def test_cancel_compensates_and_says_canceled(http: httpx.AsyncClient, order_worker: Any) -> None:
    workflow_id = await start(http, step_delay_seconds=3)
    await progress(http, workflow_id, lambda p: p["done"] >= 1)
    cancel = await http.post(f"/api/workflows/{workflow_id}/cancel")
    assert cancel.status_code == 202 and cancel.json() == {"workflow_id": workflow_id, "action": "cancel"}
    final = await result_of(http, workflow_id)
    assert final.status_code == 409 and final.json()["status"] == "CANCELED"
    state = (await http.get(f"/api/workflows/{workflow_id}")).json()
    assert state["status"] == "CANCELED"
    assert {c["activity"] for c in state["progress"]["compensations"]} >= {"delete_customer_account"}
    again = await http.post(f"/api/workflows/{workflow_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["type"] == "RunAlreadyClosed"


async def test_pause_and_resume(http: httpx.AsyncClient, order_worker: Any) -> None:
    workflow_id = await start(http, step_delay_seconds=1)
    assert (await http.post(f"/api/workflows/{workflow_id}/pause")).status_code == 202
    paused = await progress(http, workflow_id, lambda p: p["state"] == "paused")
    assert paused["done"] < 5
    assert (await http.post(f"/api/workflows/{workflow_id}/signals/resume")).status_code == 202
    final = await result_of(http, workflow_id)
    assert final.status_code == 200 and final.json()["status"] == "COMPLETED"


async def test_only_accepted_signals_and_updates(http: httpx.AsyncClient) -> None:
    workflow_id = await start(http)
    for kind, accepted in (("signal", "pause, resume"), ("update", "none")):
        response = await http.post(f"/api/workflows/{workflow_id}/{kind}s/approve", json={"note": "x"})
        assert response.status_code == 404, kind
        assert response.json()["error"] == {
            "type": "NotAccepted",
            "field": "name",
            "message": f"{workflow_id} (order) accepts the {kind}s {accepted}, not 'approve'",
        }
    # pause is a signal, not an update: the update route refuses it instead of failing later.
    response = await http.post(f"/api/workflows/{workflow_id}/updates/pause")
    assert response.status_code == 404 and "accepts the updates none" in response.json()["error"]["message"]
    await http.post(f"/api/workflows/{workflow_id}/cancel", headers={"Content-Type": "application/json"})


async def test_list_filters_and_pages(http: httpx.AsyncClient, order_worker: Any) -> None:
    ids = [await start(http) for _ in range(3)]
    for workflow_id in ids:
        assert (await result_of(http, workflow_id)).status_code == 200

    async def listed() -> list[str] | None:
        runs = (
            await http.get("/api/workflows", params={"family": "order", "status": "COMPLETED", "page_size": 100})
        ).json()["runs"]
        found = [r["workflow_id"] for r in runs]
        return found if set(ids) <= set(found) else None

    found = await eventually(listed)
    assert all(r.startswith("order-") for r in found)
    seen: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"family": "order", "page_size": 2, **({"page_token": token} if token else {})}
        page = (await http.get("/api/workflows", params=params)).json()
        assert len(page["runs"]) <= 2
        seen += [r["workflow_id"] for r in page["runs"]]
        if not (token := page["next_page_token"]):
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    # A token this API did not write names no page (and never reaches Temporal).
    forged = await http.get("/api/workflows", params={"page_token": "Zm9yZ2Vk"})
    assert forged.status_code == 404 and forged.json()["error"]["field"] == "page_token"
    malformed = await http.get("/api/workflows", params={"page_token": "[forged]"})
    assert malformed.status_code == 422 and malformed.json()["error"]["field"] == "page_token"
    bad = await http.get("/api/workflows", params={"status": "SLEEPING"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


async def test_events_stream_ends_with_the_result(http: httpx.AsyncClient, order_worker: Any) -> None:
    workflow_id = await start(http, step_delay_seconds=0.3)
    events = await read_events(http, workflow_id)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    assert kinds[0] == "status" and events[0][1]["workflow_id"] == workflow_id
    assert events[-1][1]["status"] == "COMPLETED" and events[-1][1]["result"]["order_id"]
    dones = [
        data["progress"]["done"] for kind, data in events if kind == "status" and isinstance(data["progress"], dict)
    ]
    assert dones == sorted(dones) and dones[-1] == 5 and len(dones) >= 2


async def test_the_singular_alias_paths(http: httpx.AsyncClient, order_worker: Any, api: RunningApi) -> None:
    done_id = await start(http)
    assert (await result_of(http, done_id)).status_code == 200
    status = await http.get(f"/api/workflow/{done_id}/status")
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"

    slow_id = await start(http, step_delay_seconds=5)
    cancel = await http.post(f"/api/workflow/{slow_id}/cancel")
    assert cancel.status_code == 202
    assert (await result_of(http, slow_id)).json()["status"] == "CANCELED"

    async def counted() -> dict[str, Any] | None:
        metrics = (await http.get("/api/workflow/metrics")).json()["families"]["order"]
        return metrics if metrics["counts"].get("COMPLETED", 0) >= 1 and metrics["step_timings"] else None

    order = await eventually(counted)
    assert order["counts"].get("CANCELED", 0) >= 1 and order["total"] >= 2
    assert order["step_timings"]["charge_payment"]["count"] >= 1
    charge = order["step_timings"]["charge_payment"]
    assert (
        charge["success_rate"] == 1.0 and 0 <= charge["min_seconds"] <= charge["p95_seconds"] <= charge["max_seconds"]
    )
    assert (await http.get("/api/metrics")).json()["families"].keys() == {f.name for f in registry().families}

    breakers = await http.get("/api/circuit-breakers/status")
    assert breakers.status_code == 200
    assert breakers.json()["breakers"] == [] and breakers.json()["available"] is True

    # A breaker that trips in a worker (the same database) is listed OPEN, with its trial time.
    assert api.settings.database_url is not None
    worker_db = Database(api.settings.database_url)
    try:
        shared = Breakers(worker_db, {"viz": BreakerConfig(1, 60)})
        with pytest.raises(ZeroDivisionError):
            shared.call("viz", lambda: 1 / 0, fallback=False)
    finally:
        worker_db.dispose()
    [viz] = (await http.get("/api/circuit-breakers/status")).json()["breakers"]
    assert (viz["name"], viz["state"], viz["trips"]) == ("viz", "open", 1) and viz["next_trial_at"]


async def test_health(http: httpx.AsyncClient, order_worker: Any, api: RunningApi) -> None:
    async def healthy() -> dict[str, Any] | None:
        response = await http.get("/api/health")
        return response.json() if response.status_code == 200 else None

    health = await eventually(healthy)
    assert health["status"] == "ok" and health["temporal"]["ok"] and health["database"]["ok"]
    # The figure says what it counts: a worker killed a moment ago is still among them.
    assert (
        f"polling task queue {api.settings.task_queue}: pollers the server saw within the last 70 s"
        in health["workers"]["detail"]
    )
    # The probe only connects: it creates no tables (the workers own the schema) and names
    # no host or user to an anonymous caller.
    assert api.settings.database_url is not None
    database_file = api.settings.database_url.removeprefix("sqlite:///")
    assert sqlite3.connect(database_file).execute("SELECT name FROM sqlite_master").fetchall() == []
    assert health["database"]["detail"] == "reachable" and health["temporal"]["detail"] == "reachable"


def test_workers_that_stopped_polling_do_not_count() -> None:
    from temporalio.api.taskqueue.v1 import PollerInfo

    now = 1_000_000.0
    live, dead = PollerInfo(), PollerInfo()
    live.last_access_time.FromSeconds(int(now) - 5)
    dead.last_access_time.FromSeconds(int(now) - 240)  # still listed by the server for minutes
    assert fresh_pollers([live, dead], now) == 1
    assert fresh_pollers([dead], now) == 0


async def test_health_without_workers_is_503(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["temporal"]["ok"] and not body["workers"]["ok"]
    assert body["workers"]["detail"].startswith("0 worker(s)")


async def test_catalog_and_openapi_list_every_family(http: httpx.AsyncClient) -> None:
    catalog = (await http.get("/api/catalog")).json()
    assert [entry["name"] for entry in catalog] == [f.name for f in registry().families]
    for entry, fam in zip(catalog, registry().families, strict=True):
        assert entry["input_schema"] == fam.input_schema()
        assert [s["name"] for s in entry["samples"]] == [p.name for p in fam.sample_paths()]
    # Each sample can be started again from the console: the order id is fresh every time.
    order_samples = [
        [s["input"]["order_id"] for s in entry["samples"]] for entry in catalog if entry["name"] == "order"
    ][0]
    again = (await http.get("/api/catalog")).json()
    assert not set(order_samples) & {
        s["input"]["order_id"] for e in again if e["name"] == "order" for s in e["samples"]
    }
    started = await http.post(
        "/api/workflows/order", json=next(e for e in again if e["name"] == "order")["samples"][0]["input"]
    )
    assert started.status_code == 201, started.text
    await http.post(
        f"/api/workflows/{started.json()['workflow_id']}/cancel", headers={"Content-Type": "application/json"}
    )
    spec = (await http.get("/openapi.json")).json()
    for fam in registry().families:
        body = spec["paths"][f"/api/workflows/{fam.name}"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"] == f"#/components/schemas/{fam.input_model.__name__}"
        assert fam.input_model.__name__ in spec["components"]["schemas"]
    for path in [
        "/api/workflow/{workflow_id}/status",
        "/api/workflow/{workflow_id}/cancel",
        "/api/workflow/metrics",
        "/api/circuit-breakers/status",
    ]:
        assert path in spec["paths"], path


def test_without_a_token_the_api_binds_to_loopback() -> None:
    assert bind_address("0.0.0.0", None) == "127.0.0.1"
    assert bind_address("0.0.0.0", "secret") == "0.0.0.0"
    assert bind_address("127.0.0.1", None) == "127.0.0.1"


def test_compose_runs_the_api_from_the_worker_image() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())
    api_service = compose["services"]["api"]
    assert api_service["build"] == compose["services"]["worker"]["build"]
    assert api_service["command"][:2] == ["saga", "api"]
    assert "SAGAWORKS_API_TOKEN" in api_service["environment"]


async def test_console_pages_render(http: httpx.AsyncClient) -> None:
    workflow_id = await start(http)
    assert "Workflow catalog" in (await http.get("/")).text
    form = (await http.get("/families/order")).text
    assert 'name="customer_email"' in form and "order-slow.json" in form
    assert (await http.get("/families/nope")).status_code == 404
    runs = await http.get("/runs", params={"family_name": "order", "page": "abc"})  # a mangled page link
    assert runs.status_code == 200
    run = await http.get(f"/runs/{workflow_id}")
    assert run.status_code == 200 and f'data-workflow-id="{workflow_id}"' in run.text
    await http.post(f"/api/workflows/{workflow_id}/cancel")


async def test_a_closed_run_page_shows_its_state_once_and_no_current_step(
    http: httpx.AsyncClient, order_worker: Any
) -> None:
    workflow_id = await start(http, inject_failure={"step": "reserve_inventory", "mode": "permanent"})
    assert (await result_of(http, workflow_id)).status_code == 409
    page = (await http.get(f"/runs/{workflow_id}")).text
    status = re.search(r'<p class="big">Status.*?</p>', page, re.S).group(0)  # type: ignore[union-attr]
    words = re.sub(r"<[^>]+>", " ", status).split()
    assert words.count("FAILED") == 1 and "failed" not in words, words
    assert 'id="current-step"' not in page and "Step - " not in page
    assert re.search(r'<span id="done">\d+</span>/<span id="total">\d+</span> steps done', page)


def test_serve_without_a_token_binds_loopback_and_says_so(dev_address: str, tmp_path: Path) -> None:
    """``python -m client.api`` (what ``saga api`` runs): asked for every interface without a
    token, it serves 127.0.0.1 only and its log says why."""
    import os
    import subprocess
    import sys
    import time

    from tests.ports import free_port

    port = free_port()
    log = tmp_path / "api.log"
    env = {k: v for k, v in os.environ.items() if k != "SAGAWORKS_API_TOKEN"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagaworks.client.api", "--host", "0.0.0.0", "--port", str(port)],
            env={**env, "TEMPORAL_ADDRESS": dev_address},
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                catalog = httpx.get(f"http://127.0.0.1:{port}/api/catalog", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert catalog.status_code == 200  # no token configured: no authentication
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert "SAGAWORKS_API_TOKEN is unset: binding to 127.0.0.1 only, not 0.0.0.0" in text
    assert "127.0.0.1:" + str(port) in text


async def test_an_approval_goes_through_the_update_route(http: httpx.AsyncClient, order_worker: Any) -> None:
    body = json.loads((SAMPLES / "routing" / "admin-request.json").read_text())
    body["request_id"] = f"api-{uuid.uuid4().hex[:8]}"
    started = await http.post("/api/workflows/routing", json=body)
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    await progress(http, workflow_id, lambda p: p.get("current_step") == "awaiting approval")

    # The workflow's validator refuses an approver outside the group, with its own message.
    refused = await http.post(f"/api/workflows/{workflow_id}/updates/approve", json={"approver": "mallory"})
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "UpdateFailed"
    assert "mallory" in refused.json()["error"]["message"]

    approved = await http.post(f"/api/workflows/{workflow_id}/updates/approve", json={"approver": "alice"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["update"] == "approve"
    final = await result_of(http, workflow_id)
    assert final.status_code == 200 and "alice" in json.dumps(final.json()["result"])


async def start_query_run(http: httpx.AsyncClient, question: str, **fields: Any) -> str:
    started = await http.post("/api/workflows/query", json={"question": question, **fields})
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    assert (await result_of(http, workflow_id)).status_code == 200
    return workflow_id


async def test_query_run_page_shows_chart_sql_plan_rows_and_producers(
    http: httpx.AsyncClient, order_worker: Any
) -> None:
    workflow_id = await start_query_run(http, "average temperature by month in 2014", max_rows=5)
    result = (await http.get(f"/api/workflows/{workflow_id}/result")).json()["result"]
    page = (await http.get(f"/runs/{workflow_id}")).text
    # The worker's SVG as an image (a data: URI), never as inline markup a script could run in.
    [src] = re.findall(r'<img id="chart"[^>]*src="([^"]+)"', page)
    assert src.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).decode() == result["chart"]["svg"]
    assert "<svg" not in page
    assert str(escape(result["sql"])) in page
    rows = re.search(r'<table id="rows".*?</table>', page, re.S).group(0)  # type: ignore[union-attr]  # the page has that element: the assertion reads it
    assert rows.count("<tr>") == 1 + 5 and "<th>month</th>" in rows and "<th>avg_temp_max</th>" in rows
    assert "5 of 12 row(s) shown" in page  # the run carries max_rows of the 12 months
    produced = re.search(r'<div id="produced-by">.*?</div>', page, re.S).group(0)  # type: ignore[union-attr]  # the page has that element: the assertion reads it
    for part, producer in result["produced_by"].items():
        assert f"<th>{part}</th><td>{producer}</td>" in produced
    plan = re.search(r'<div id="plan">.*?</div>\s*<h3>', page, re.S)
    assert plan is not None and "<th>table</th><td>seattle_weather</td>" in plan.group(0)

    # One row: no chart fits, so the page says so and shows the table.
    single = await start_query_run(http, "number of cars")
    page = (await http.get(f"/runs/{single}")).text
    assert 'id="no-chart"' in page and 'id="chart"' not in page
    assert re.search(r'<table id="rows".*?</table>', page, re.S).group(0).count("<tr>") == 2  # type: ignore[union-attr]  # the page has that element: the assertion reads it


async def test_blog_run_page_renders_the_post(http: httpx.AsyncClient, order_worker: Any, db: Database) -> None:
    from tests.corpus import store_documents

    store_documents(db)  # the worker's database: what research searches
    topic = "Retries, idempotency and replay in durable workflows"
    started = await http.post("/api/workflows/blog", json={"topic": topic})
    assert started.status_code == 201, started.text
    workflow_id = started.json()["workflow_id"]
    final = await result_of(http, workflow_id)
    assert final.status_code == 200, final.text
    post = final.json()["result"]["markdown"]
    page = (await http.get(f"/runs/{workflow_id}")).text
    result = re.search(r'<div id="result">.*', page, re.S).group(0)  # type: ignore[union-attr]  # the page has that element: the assertion reads it
    # The Markdown is rendered (headings, lists), not shown as text.
    assert f"<h1>{escape(topic)}</h1>" in result
    headings = re.findall(r"^## (.+)$", post, re.MULTILINE)
    assert len(headings) >= 5
    for heading in headings:
        assert f"<h2>{escape(heading)}</h2>" in result
    assert "\n## " not in result and "<li>" in result


async def test_schedules_through_the_api_and_the_console(http: httpx.AsyncClient, order_worker: Any) -> None:
    schedule_id = f"api-schedule-{uuid.uuid4().hex[:8]}"
    text = json.loads((SAMPLES / "sequential" / "billing-retrospective.json").read_text())["text"]
    body = {
        "family": "sequential",
        "cron": "0 7 * * MON",
        "input": {"text": text},
        "schedule_id": schedule_id,
        "paused": True,
    }
    created = await http.post("/api/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/schedules/{schedule_id}"
    info = created.json()
    assert (info["schedule_id"], info["workflow_type"], info["cron"], info["paused"], info["overlap"]) == (
        schedule_id,
        "SequentialWorkflow",
        ["0 7 * * 1"],
        True,
        "SKIP",
    )
    try:
        again = await http.post("/api/schedules", json=body)
        assert again.status_code == 409 and again.json()["error"]["field"] == "schedule_id"
        bad_input = await http.post("/api/schedules", json={**body, "schedule_id": None, "input": {"text": 5}})
        assert bad_input.status_code == 422 and bad_input.json()["error"]["field"] == "input.text"
        bad_cron = await http.post(
            "/api/schedules", json={**body, "schedule_id": f"{schedule_id}-bad", "cron": "every tuesday"}
        )
        assert bad_cron.status_code == 422 and bad_cron.json()["error"]["field"] == "cron"
        bad_family = await http.post("/api/schedules", json={**body, "family": "nope"})
        assert bad_family.status_code == 422 and bad_family.json()["error"]["field"] == "family"
        assert (await http.get(f"/api/schedules/{schedule_id}-bad")).status_code == 404

        async def listed() -> dict[str, Any] | None:  # schedules are listed through visibility: it lags
            rows = (await http.get("/api/schedules")).json()
            return next((row for row in rows if row["schedule_id"] == schedule_id), None)

        row = await eventually(listed)
        assert (row["workflow_type"], row["paused"]) == ("SequentialWorkflow", True)

        unpaused = await http.post(f"/api/schedules/{schedule_id}/unpause", json="back on")
        assert unpaused.status_code == 202 and unpaused.json() == {"schedule_id": schedule_id, "action": "unpause"}
        described = (await http.get(f"/api/schedules/{schedule_id}")).json()
        assert not described["paused"] and described["note"] == "back on" and described["next"][0]

        assert (await http.post(f"/api/schedules/{schedule_id}/trigger")).status_code == 202

        async def ran() -> dict[str, Any] | None:
            info = (await http.get(f"/api/schedules/{schedule_id}")).json()
            return info if info["recent"] and not info["running"] else None

        info = await eventually(ran)
        [run] = info["recent"]
        assert run["workflow_id"].startswith("sequential-")  # the family's id; Temporal appends the time
        final = await result_of(http, run["workflow_id"])
        assert final.json()["status"] == "COMPLETED", final.text

        # The console lists it, with the run it started.
        page = (await http.get("/schedules")).text
        row = re.search(rf"<tr><td>{schedule_id}</td>.*?</tr>", page, re.S).group(0)  # type: ignore[union-attr]  # the page has that element: the assertion reads it
        assert "SequentialWorkflow" in row and "0 7 * * 1" in row and run["workflow_id"] in row

        paused = await http.post(f"/api/schedules/{schedule_id}/pause")
        assert paused.status_code == 202
        assert (await http.get(f"/api/schedules/{schedule_id}")).json()["paused"]
    finally:
        deleted = await http.delete(f"/api/schedules/{schedule_id}")
    assert deleted.status_code == 204
    assert (await http.get(f"/api/schedules/{schedule_id}")).status_code == 404


async def test_ticket_queues_through_the_api_and_the_console(http: httpx.AsyncClient, order_worker: Any) -> None:
    async def open_ticket(subject: str) -> str:
        body = {"ticket_id": f"T-{uuid.uuid4().hex[:8]}", "customer_email": "ada@example.com", "subject": subject}
        started = await http.post("/api/workflows/support-ticket", json=body)
        assert started.status_code == 201, started.text
        return started.json()["workflow_id"]

    urgent = await open_ticket("Urgent: payment failed")
    hello = await open_ticket("Hello there")
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    try:
        await progress(http, hello, lambda p: (p.get("ticket") or {}).get("state") == "open")
        assigned = await http.post(f"/api/workflows/{hello}/updates/assign", json={"agent": agent})
        assert assigned.status_code == 200, assigned.text

        async def queue(**params: str) -> list[dict[str, Any]]:
            response = await http.get("/api/tickets", params=params)
            assert response.status_code == 200, response.text
            return response.json()

        async def rows_for(ids: set[str], **params: str) -> dict[str, dict[str, Any]] | None:
            found = {row["workflow_id"]: row for row in await queue(**params) if row["workflow_id"] in ids}
            return found if set(found) == ids else None

        # Visibility lags the runs' upserts: wait until both are indexed as they are now.
        await eventually(lambda: rows_for({hello}, assignee=agent, state="assigned"))
        rows = await eventually(lambda: rows_for({urgent}, priority="CRITICAL", state="open"))
        assert (rows[urgent]["type"], rows[urgent]["priority"], rows[urgent]["state"], rows[urgent]["assignee"]) == (
            "customer_service",
            "CRITICAL",
            "open",
            None,
        )
        assert hello not in {row["workflow_id"] for row in await queue(priority="CRITICAL", state="open")}
        [mine] = await queue(assignee=agent)
        assert (mine["workflow_id"], mine["type"], mine["state"], mine["assignee"]) == (
            hello,
            "general_query",
            "assigned",
            agent,
        )
        assert urgent not in {row["workflow_id"] for row in await queue(type="general_query")}
        assert {urgent, hello} <= {row["workflow_id"] for row in await queue(limit="500")}

        # The filters are the enums /openapi.json lists, spelled as listed (saga tickets and the
        # console's ticket page take any case).
        for params, field in [
            ({"priority": "SOON"}, "priority"),
            ({"priority": "critical"}, "priority"),
            ({"state": "OPEN"}, "state"),
        ]:
            bad = await http.get("/api/tickets", params=params)
            assert bad.status_code == 422 and bad.json()["error"]["field"] == field, bad.text
        assert (await http.get("/api/tickets", params={"type": "nonsense"})).json()["error"]["field"] == "type"

        page = (await http.get("/tickets", params={"priority": "CRITICAL", "state": "open"})).text
        assert f">{urgent}</a>" in page and f">{hello}</a>" not in page
        page = (await http.get("/tickets", params={"assignee": agent})).text
        assert re.search(
            rf">{hello}</a></td><td>general_query</td>\s*<td>\w+</td><td>assigned</td><td>{agent}</td>", page
        )
        assert 'id="filter-problem"' in (await http.get("/tickets", params={"state": "lost"})).text
    finally:
        for workflow_id in (urgent, hello):
            await http.post(f"/api/workflows/{workflow_id}/cancel")


async def test_workflow_metrics_carry_the_query_kpis_and_breaker_activations(
    http: httpx.AsyncClient, order_worker: Any, api: RunningApi
) -> None:
    answered = await start_query_run(http, "average mpg by origin")
    refused = await http.post(
        "/api/workflows/query", json={"question": "what is the airspeed velocity of an unladen swallow"}
    )
    assert (await result_of(http, refused.json()["workflow_id"])).json()["status"] == "FAILED"
    # A breaker that opened in a worker sharing the API's database counts as one activation.
    assert api.settings.database_url is not None
    worker_db = Database(api.settings.database_url)
    try:
        with pytest.raises(ZeroDivisionError):
            Breakers(worker_db, {"viz": BreakerConfig(1, 60)}).call("viz", lambda: 1 / 0, fallback=False)
    finally:
        worker_db.dispose()

    async def counted() -> dict[str, Any] | None:
        body = (await http.get("/api/workflow/metrics", params={"runs": 200})).json()
        by_status = body["query"]["by_status"]
        return body if by_status.get("COMPLETED", 0) >= 1 and by_status.get("FAILED", 0) >= 1 else None

    body = await eventually(counted)
    assert set(body["families"]) == {f.name for f in registry().families}  # what /api/metrics says, too
    query = body["query"]
    assert query["runs"] >= 2 and answered
    steps = {step["step"]: step for step in query["steps"]}
    assert {"health", "nlp", "data", "viz"} <= set(steps)
    # The refused question failed its nlp step (once: a validation error is not retried).
    assert steps["nlp"]["succeeded"] < steps["nlp"]["calls"] and steps["nlp"]["success_rate"] < 1
    assert steps["nlp"]["attempts"].get("1", 0) >= 2
    for name in ("nlp", "data", "viz"):
        assert sum(steps[name]["attempts"].values()) >= 1, name
    # Time per agent. (A local activity of a few ms can have no time: its marker's completion
    # time may precede its schedule time, and query_metrics leaves such samples out.)
    assert 0 < steps["nlp"]["p50_ms"] <= steps["nlp"]["p95_ms"]
    assert all(s["p50_ms"] is not None and 0 <= s["p50_ms"] <= s["p95_ms"] for s in steps.values()), steps
    assert steps["data"]["success_rate"] == 1.0 and steps["viz"]["success_rate"] == 1.0
    assert body["breaker_activations"] == {"viz": 1}
    assert [b["state"] for b in body["breakers"]["breakers"]] == ["open"]


async def test_trace_of_a_flawed_plan_holds_assessments_alerts_mitigations_and_breakers(
    http: httpx.AsyncClient, dev_client: Any, db: Database, task_queue: str, tmp_path: Path
) -> None:
    from tests.plans import make_plan, plan_settings, plan_worker

    plan = make_plan("plan-breve")  # too little text: stages fail and are mitigated
    async with plan_worker(dev_client, db, task_queue, plan_settings(tmp_path)):
        started = await http.post("/api/workflows/plan-analysis", json=plan.model_dump(mode="json"))
        assert started.status_code == 201, started.text
        workflow_id = started.json()["workflow_id"]
        final = await result_of(http, workflow_id)
    assert final.status_code == 200, final.text
    result = final.json()["result"]
    report = await http.get(f"/api/workflows/{workflow_id}/trace")
    assert report.status_code == 200, report.text
    trace, risks = report.json()["trace"], report.json()["risks"]
    assert trace["status"] == "COMPLETED" and all(
        step["result"] is None for step in trace["steps"]
    )  # no payloads asked
    assert risks["status"] == "COMPLETED" and result["mitigations"] and result["alerts"]

    # Assessments: each completed stage's, as the run's result holds it.
    completed = [row for row in risks["stages"] if row["outcome"] == "completed"]
    assert [row["stage"] for row in completed] == [stage["stage"] for stage in result["stages"]]
    for row, stage in zip(completed, result["stages"], strict=True):
        assessment = stage["assessment"]
        assert (row["detected"], row["applicable"], row["reasons"]) == (
            assessment["detected"],
            assessment["applicable"],
            assessment["reasons"],
        ), row["stage"]
    # Alerts, in order; mitigations with their outcome (each first choice failed, then its
    # mitigation ran and completed); breaker states as the stages reported them.
    assert [(a["level"], a["stage"], a["risk_id"], a["message"]) for a in risks["alerts"]] == [
        (a["level"], a["stage"], a["risk_id"], a["message"]) for a in result["alerts"]
    ]
    assert [(m["risk_id"], m["strategy"], m["severity"], m["category"]) for m in risks["mitigations"]] == [
        (m["risk_id"], m["strategy"], m["severity"], m["category"]) for m in result["mitigations"]
    ]
    assert all(m["succeeded"] for m in risks["mitigations"])
    failed = [row["stage"] for row in risks["stages"] if row["outcome"] == "failed"]
    assert failed == [m["stage"] for m in risks["mitigations"]]
    assert risks["breakers"] == {stage["stage"]: stage["breaker"] for stage in result["stages"]}


async def test_the_event_stream_waits_on_the_history_instead_of_polling(
    dev_client: Any, order_worker: Any, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagaworks import ApprovalDecision
    from sagaworks.client.api import events
    from sagaworks.contracts.routing import RoutingInput

    described: list[str] = []
    real_describe = events.describe_run

    async def counting_describe(client: Any, workflow_id: str) -> dict[str, Any]:
        described.append(workflow_id)
        return await real_describe(client, workflow_id)

    monkeypatch.setattr(events, "describe_run", counting_describe)
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.1)
    request = RoutingInput.model_validate_json((SAMPLES / "routing" / "admin-request.json").read_text())
    request = request.model_copy(update={"request_id": f"sse-{uuid.uuid4().hex[:8]}"})
    handle = await dev_client.start_workflow(
        "RoutingWorkflow", request, id=f"routing-{request.request_id}", task_queue=task_queue
    )
    stream = events.run_events(dev_client, handle.id)
    async for chunk in stream:
        if '"current_step":"awaiting approval"' in chunk:
            break
    # Nothing happens while the request waits for a decision: the stream only keeps the
    # connection alive and asks nothing (polling asked every 0.5 s). At most the workflow
    # task whose state the query already answered arrives after it.
    before = len(described)
    keepalives = 0
    async for chunk in stream:
        assert chunk == ": keepalive\n\n", chunk
        keepalives += 1
        if keepalives == 10:
            break
    assert len(described) <= before + 1
    await handle.execute_update("approve", ApprovalDecision(approver="alice"))
    rest = [chunk async for chunk in stream if not chunk.startswith(":")]
    assert rest[-1].startswith("event: result") and '"decided_by":"alice"' in rest[-1]


async def test_metrics_are_derived_once_per_cache_period(
    dev_address: str, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagaworks.client.api import routes_ops

    derived: list[str] = []
    real_stats = routes_ops.activity_stats

    async def counting_stats(client: Any, **kwargs: Any) -> Any:
        derived.append(kwargs["family"].name)
        return await real_stats(client, **kwargs)

    monkeypatch.setattr(routes_ops, "activity_stats", counting_stats)
    settings = ApiSettings(
        token=TOKEN, task_queue=task_queue, address=dev_address, database_url=None, metrics_cache_seconds=300
    )
    with api_server(settings) as running:
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as http:
            answers = await asyncio.gather(*(http.get("/api/metrics") for _ in range(3)))
            assert [a.status_code for a in answers] == [200] * 3
            assert sorted(derived) == sorted(
                f.name for f in registry().families
            )  # concurrent callers shared one derivation
            again = await http.get("/api/metrics")
            workflow_metrics = await http.get("/api/workflow/metrics")
            assert (
                again.json() == answers[0].json()
                and workflow_metrics.json()["families"] == answers[0].json()["families"]
            )
            assert len(derived) == len(registry().families)
            assert (await http.get("/api/metrics", params={"runs": 5})).status_code == 200  # another question
            assert len(derived) == 2 * len(registry().families)
