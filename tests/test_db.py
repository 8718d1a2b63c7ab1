"""The database layer and the order activities' idempotency, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update

from activities.db import DONE, UNDONE, Database, StepAlreadyCompensated, apply_once, undo_once
from activities.orders import InventoryItem, Payment, Reservation, invariant_violations, seed_inventory


@pytest.fixture
def backend(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    seed_inventory(database, {"WIDGET-1": 100})
    yield database
    database.dispose()


def _charge(db: Database, key: str, order_id: str = "o1", amount: int = 500) -> Payment:
    with db.transaction() as session:
        return apply_once(
            session, Payment, key, lambda: Payment(order_id=order_id, amount_cents=amount, reference="p")
        )


def _refund(db: Database, key: str, order_id: str = "o1") -> bool:
    def revert(row: Payment) -> None:
        row.refund_count += 1

    with db.transaction() as session:
        return undo_once(session, Payment, key, order_id, revert)


def test_apply_once_is_idempotent(backend: Database) -> None:
    first = _charge(backend, "wf:charge")
    again = _charge(backend, "wf:charge", amount=999)  # a retry never applies a second time
    assert first.key == again.key and again.amount_cents == 500
    assert invariant_violations(backend, {"o1": "COMPLETED"}) == [
        "completed order o1 lacks ['customer_accounts', 'notifications', 'reservations', 'shipping_labels']"
    ]


def test_undo_once_refunds_exactly_once(backend: Database) -> None:
    _charge(backend, "wf:charge")
    assert _refund(backend, "wf:charge") is True
    assert _refund(backend, "wf:charge") is False
    with backend.transaction() as session:
        payment = session.get(Payment, "wf:charge")
        assert payment is not None and payment.status == UNDONE and payment.refund_count == 1
    assert invariant_violations(backend, {"o1": "FAILED"}) == []


def test_compensation_that_overtakes_its_step_blocks_it_for_good(backend: Database) -> None:
    assert _refund(backend, "wf:charge") is False  # nothing charged yet: a tombstone
    with pytest.raises(StepAlreadyCompensated):
        _charge(backend, "wf:charge")
    with backend.transaction() as session:
        payment = session.get(Payment, "wf:charge")
        assert payment is not None and payment.amount_cents is None


def test_invariant_checker_reports_each_kind_of_violation(backend: Database) -> None:
    _charge(backend, "wf1:charge", order_id="o1")
    _charge(backend, "wf2:charge", order_id="o1")  # a second charge of the same order
    with backend.transaction() as session:
        session.execute(update(InventoryItem).values(on_hand=InventoryItem.on_hand - 1))
        session.add(Reservation(key="wf1:reserve", order_id="o1", status=DONE, lines={"WIDGET-1": 5}))
    violations = invariant_violations(backend, {"o1": "CANCELED"})
    assert "order o1 charged 2 times" in violations
    assert "stock of WIDGET-1 not conserved: 99 on hand + 5 reserved != 100" in violations
    assert "canceled order o1 left ['payments', 'reservations'] in place" in violations
    assert "order o1 (CANCELED) refunded 0 times" in violations


def test_concurrent_charges_of_one_key_apply_once(backend: Database) -> None:
    def attempt(_: int) -> str:
        try:
            return _charge(backend, "wf:charge").key
        except Exception as err:  # the losing insert of a race: retried by Temporal
            return type(err).__name__

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert "wf:charge" in outcomes
    with backend.transaction() as session:
        assert session.query(Payment).count() == 1
