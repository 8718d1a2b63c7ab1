"""The shared circuit breakers: transitions, fast failure, one trial across processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from sagaworks._breakers import BreakerConfig, Breakers, breaker_configs_from_env, breaker_statuses
from sagaworks.activities.db import Database
from sagaworks.activities.errors import ErrorClass, error


@pytest.fixture
def url(db_url: str) -> str:
    """A fresh database: SQLite, and PostgreSQL when SAGAWORKS_TEST_POSTGRES_URL is set."""
    return db_url


@pytest.fixture
def two(url: str) -> Iterator[tuple[Breakers, Breakers]]:
    """Two Breakers over two engines on one database: what two worker processes share."""
    configs = {"viz": BreakerConfig(fail_max=3, reset_timeout=0.5), "data": BreakerConfig(2, 0.5)}
    first, second = Database(url), Database(url)
    yield Breakers(first, configs), Breakers(second, configs)
    first.dispose()
    second.dispose()


def _down() -> None:
    raise error(ErrorClass.EXTERNAL, "agent unreachable")


def _fail(breakers: Breakers, name: str = "viz") -> ApplicationError:
    with pytest.raises(ApplicationError) as failure:
        breakers.call(name, _down)
    return failure.value


def _wait_for_trial_time(breakers: Breakers, name: str) -> None:
    trial_at = breakers.status(name).next_trial_at
    assert trial_at is not None
    deadline = time.monotonic() + 30
    while datetime.now(UTC) <= trial_at:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_closed_to_open_after_threshold_seen_by_every_process(two: tuple[Breakers, Breakers]) -> None:
    a, b = two
    assert a.call("viz", lambda: "chart") == "chart"
    assert [_fail(a).type, _fail(b).type] == ["ExternalError", "ExternalError"]
    assert a.status("viz").state == "closed" and b.status("viz").failures == 2
    assert _fail(a).type == "ExternalError"  # the third failure trips it, with its own error
    assert b.status("viz").state == "open"
    calls: list[str] = []
    fast = _fail_fast(b, calls)
    assert fast.type == "CircuitOpen" and fast.non_retryable and fast.next_retry_delay is None
    assert calls == []  # the dependency was not called


def _fail_fast(breakers: Breakers, calls: list[str], *, fallback: bool = True) -> ApplicationError:
    with pytest.raises(ApplicationError) as failure:
        breakers.call("viz" if fallback else "data", lambda: calls.append("called"), fallback=fallback)
    return failure.value


def test_success_resets_the_consecutive_count(two: tuple[Breakers, Breakers]) -> None:
    a, _ = two
    _fail(a), _fail(a)
    a.call("viz", lambda: None)
    _fail(a), _fail(a)
    assert a.status("viz").state == "closed" and a.status("viz").failures == 2


def test_a_successful_call_through_a_closed_breaker_reads_its_row_once(url: str) -> None:
    """The hot path of every agent call: one SELECT of the breaker's row, no write."""
    from sqlalchemy import event

    db = Database(url)
    breakers = Breakers(db, {"data": BreakerConfig(3, 60)})
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        assert breakers.call("data", lambda: "rows") == "rows"
        touching = [s for s in statements if "circuit_breakers" in s]
        assert len(touching) == 1 and touching[0].lstrip().upper().startswith("SELECT"), statements
        # A failure still counts at once, and a success after it still resets the count.
        _fail(breakers, "data")
        assert breakers.status("data").failures == 1
        breakers.call("data", lambda: None)
        assert breakers.status("data").failures == 0
    finally:
        db.dispose()


def test_business_errors_do_not_count(two: tuple[Breakers, Breakers]) -> None:
    a, _ = two

    def refused() -> None:
        raise error(ErrorClass.VALIDATION, "SQL refused: DROP", non_retryable=True)

    for _ in range(5):
        with pytest.raises(ApplicationError, match="SQL refused"):
            a.call("viz", refused)
    assert a.status("viz").state == "closed" and a.status("viz").failures == 0


def test_without_fallback_an_open_breaker_delays_the_retry_to_its_trial(two: tuple[Breakers, Breakers]) -> None:
    a, _ = two
    _fail(a, "data"), _fail(a, "data")
    before = datetime.now(UTC)
    failure = _fail_fast(a, [], fallback=False)
    assert failure.type == "CircuitOpen" and not failure.non_retryable
    trial_at = a.status("data").next_trial_at
    assert failure.next_retry_delay is not None and trial_at is not None
    assert failure.next_retry_delay.total_seconds() >= 1  # never a hot loop of retries
    assert before <= trial_at


def test_trial_success_closes_and_trial_failure_reopens(two: tuple[Breakers, Breakers]) -> None:
    a, b = two
    for _ in range(3):
        _fail(a)
    first_open = a.status("viz").opened_at
    _wait_for_trial_time(a, "viz")
    assert _fail(b).type == "ExternalError"  # the trial ran and failed
    status = a.status("viz")
    assert status.state == "open" and status.opened_at is not None and first_open is not None
    assert status.opened_at > first_open
    _wait_for_trial_time(a, "viz")
    assert b.call("viz", lambda: "back") == "back"
    assert a.status("viz").state == "closed" and a.status("viz").failures == 0


def test_half_open_lets_exactly_one_trial_through(two: tuple[Breakers, Breakers]) -> None:
    a, b = two
    for _ in range(3):
        _fail(a)
    _wait_for_trial_time(a, "viz")
    entered, release = threading.Event(), threading.Event()

    def slow_trial() -> str:
        entered.set()
        assert release.wait(30)
        return "ok"

    outcome: list[str] = []
    trial = threading.Thread(target=lambda: outcome.append(a.call("viz", slow_trial)))
    trial.start()
    try:
        assert entered.wait(30)
        assert b.status("viz").state == "half-open"
        calls: list[str] = []
        blocked = _fail_fast(b, calls)
        assert blocked.type == "CircuitOpen" and "trial" in blocked.message and calls == []
    finally:
        release.set()
        trial.join(30)
    assert outcome == ["ok"] and b.status("viz").state == "closed"


def test_statuses_list_every_configured_breaker(two: tuple[Breakers, Breakers], url: str) -> None:
    a, _ = two
    for _ in range(2):
        _fail(a, "data")
    listed = {s.name: s for s in a.statuses()}
    assert listed["data"].state == "open" and listed["data"].next_trial_at is not None and listed["data"].trips == 1
    assert listed["viz"].state == "closed" and listed["viz"].next_trial_at is None
    db = Database(url)
    try:
        assert {s.name: s.state for s in breaker_statuses(db)} == {"data": "open", "viz": "closed"}
    finally:
        db.dispose()


def test_thresholds_come_from_the_defaults_and_the_environment() -> None:
    defaults = breaker_configs_from_env({})
    assert (defaults["nlp"], defaults["data"], defaults["viz"]) == (
        BreakerConfig(5, 60),
        BreakerConfig(3, 120),
        BreakerConfig(5, 60),
    )
    assert breaker_configs_from_env({"SAGAWORKS_BREAKER_VIZ": "2/1.5"})["viz"] == BreakerConfig(2, 1.5)
    with pytest.raises(SystemExit, match="SAGAWORKS_BREAKER_DATA"):
        breaker_configs_from_env({"SAGAWORKS_BREAKER_DATA": "three"})


def test_the_api_reads_breakers_without_touching_the_schema(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    from sagaworks._breakers import read_breaker_statuses

    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert read_breaker_statuses(engine) == []
    assert inspect(engine).get_table_names() == []  # nothing created by a reader
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    Breakers(db, {"viz": BreakerConfig(1, 60)})
    assert [(s.name, s.state) for s in read_breaker_statuses(engine)] == [("viz", "closed")]
    db.dispose()
    engine.dispose()


def test_a_breaker_of_any_name_is_configured_by_its_environment_variable(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagaworks import CIRCUIT_OPEN, breaker_env_key

    assert breaker_env_key("billing-api") == "SAGAWORKS_BREAKER_BILLING_API"
    assert breaker_env_key("search.v2 eu") == "SAGAWORKS_BREAKER_SEARCH_V2_EU"
    monkeypatch.setenv("SAGAWORKS_BREAKER_BILLING_API", "2/600")
    database = Database(url)
    try:
        breakers = Breakers(database)  # the built-in names only: billing-api is new to it
        assert [_fail(breakers, "billing-api").type for _ in range(2)] == ["ExternalError", "ExternalError"]
        refused = _fail(breakers, "billing-api")  # open after the two failures the variable asks
        assert (refused.type, refused.non_retryable) == (CIRCUIT_OPEN, True)
        status = breakers.status("billing-api")
        assert (status.state, status.fail_max, status.reset_timeout_seconds) == ("open", 2, 600)
        assert "billing-api" in {s.name for s in breaker_statuses(database)}
        # A breaker nobody configured gets the default thresholds (read, not created).
        assert breakers.status("search").fail_max == 5
        assert "search" not in {s.name for s in breaker_statuses(database)}
        with pytest.raises(ValueError, match="breaker name"):
            breakers.call("-" * 3, lambda: None)
    finally:
        database.dispose()


def test_a_bad_breaker_variable_of_any_name_stops_the_worker_at_start(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGAWORKS_BREAKER_BILLING_API", "two")
    database = Database(url)
    try:
        with pytest.raises(SystemExit, match="SAGAWORKS_BREAKER_BILLING_API='two'"):
            Breakers(database)
    finally:
        database.dispose()


async def test_an_open_breaker_of_any_name_sends_the_step_to_its_fallback(
    time_skipping_env: Any, task_queue: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from temporalio.worker import Worker

    from tests.breaker_probe import BREAKER, BillingActivities, BillingProbe

    monkeypatch.setenv("SAGAWORKS_BREAKER_BILLING_API", "2/600")
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    billing = BillingActivities(Breakers(database))
    client = time_skipping_env.client
    try:
        with ThreadPoolExecutor(2) as pool:
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[BillingProbe],
                activities=[billing.charge_by_api, billing.charge_later],
                activity_executor=pool,
            ):
                outcome = await client.execute_workflow(
                    BillingProbe.run, 1250, id=f"billing-{task_queue}", task_queue=task_queue
                )
        # Two attempts reached the dependency and opened the breaker; the third failed fast
        # and the fallback ran instead, saying which breaker sent it there.
        assert billing.calls == 2
        assert (outcome.value, outcome.fallback_taken, outcome.breaker) == ("queued 1250 for later", True, BREAKER)
        assert outcome.reason is not None and "circuit breaker billing-api is open" in outcome.reason
    finally:
        database.dispose()
