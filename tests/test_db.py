"""The database layer and the order activities' idempotency, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from sagaworks import DONE, UNDONE, Database, apply_once, undo_once
from sagaworks.activities.orders import (
    CHARGE,
    REFUND,
    InventoryItem,
    LedgerEntry,
    OrderActivities,
    Payment,
    Reservation,
    ShippingLabel,
    invariant_violations,
    seed_inventory,
)
from sagaworks.contracts.orders import SAMPLE_INVENTORY, ChargeInput, LabelInput, SealStepsInput, UndoInput
from tests.orders import ledger


@pytest.fixture
def backend(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    seed_inventory(database, {"WIDGET-1": 100})
    yield database
    database.dispose()


def _charge(db: Database, key: str, order_id: str = "o1", amount: int = 500) -> str:
    """Run the real charge_payment activity; return the payment's reference."""
    step = ChargeInput(key=key, order_id=order_id, run_id="run-1", amount_cents=amount)
    return ActivityEnvironment().run(OrderActivities(db).charge_payment, step).reference


def _refund(db: Database, key: str, order_id: str = "o1") -> bool:
    undo = UndoInput(key=key, order_id=order_id, run_id="run-1")
    return ActivityEnvironment().run(OrderActivities(db).refund_payment, undo).undone


def test_the_worker_seeds_the_sample_inventory(db_url: str) -> None:
    database = Database(db_url)
    try:
        seed_inventory(database)
        with database.transaction() as session:
            stock = {item.sku: (item.on_hand, item.total) for item in session.scalars(select(InventoryItem))}
    finally:
        database.dispose()
    assert stock == {entry.sku: (entry.stock, entry.stock) for entry in SAMPLE_INVENTORY}


def test_a_repeated_charge_takes_effect_once(backend: Database) -> None:
    first = _charge(backend, "wf:charge")
    again = _charge(backend, "wf:charge", amount=999)  # a retry never applies a second time
    assert first == again
    assert ledger(backend, "o1") == {CHARGE: 1}
    with backend.transaction() as session:
        assert session.scalars(select(LedgerEntry.amount_cents)).all() == [500]
    assert invariant_violations(backend, {"o1": "COMPLETED"}) == [
        "completed order o1 lacks ['customer_accounts', 'notifications', 'reservations', 'shipping_labels']"
    ]


def test_a_repeated_refund_takes_effect_once(backend: Database) -> None:
    _charge(backend, "wf:charge")
    assert _refund(backend, "wf:charge") is True
    assert _refund(backend, "wf:charge") is False
    assert ledger(backend, "o1") == {CHARGE: 1, REFUND: 1}
    with backend.transaction() as session:
        payment = session.get(Payment, "wf:charge")
        assert payment is not None and payment.status == UNDONE
    assert invariant_violations(backend, {"o1": "FAILED"}) == []


def test_compensation_that_overtakes_its_step_blocks_it_for_good(backend: Database) -> None:
    assert _refund(backend, "wf:charge") is False  # nothing charged yet: a tombstone
    with pytest.raises(ApplicationError) as refused:
        _charge(backend, "wf:charge")
    assert refused.value.type == "StepAlreadyCompensated" and refused.value.non_retryable
    assert ledger(backend, "o1") == {}  # no money moved


def test_sealing_steps_blocks_the_untaken_and_names_the_taken(backend: Database) -> None:
    _charge(backend, "order-o1:charge_payment")  # taken by the run before a reset
    seal = SealStepsInput(
        order_id="o1",
        run_id="run-1",
        steps={"charge_payment": "order-o1:charge_payment", "create_shipping_label": "order-o1:create_shipping_label"},
    )
    assert ActivityEnvironment().run(OrderActivities(backend).seal_unreached_steps, seal).taken == ["charge_payment"]
    with backend.transaction() as session:
        label = session.get(ShippingLabel, "order-o1:create_shipping_label")
        assert label is not None and label.status == UNDONE  # a late attempt can never take effect


def test_invariant_checker_reports_each_kind_of_violation(backend: Database) -> None:
    _charge(backend, "wf1:charge", order_id="o1")
    with backend.transaction() as session:
        # A charge that took effect a second time (say a step that bypassed its key) and
        # a refund of an order never charged: only the ledger can show either.
        session.add(LedgerEntry(order_id="o1", payment_key="wf1:charge", kind=CHARGE, amount_cents=500))
        session.add(LedgerEntry(order_id="o2", payment_key="wf2:charge", kind=REFUND, amount_cents=500))
        session.execute(update(InventoryItem).values(on_hand=InventoryItem.on_hand - 1))
        session.add(Reservation(key="wf1:reserve", saga_id="o1", status=DONE, lines={"WIDGET-1": 5}))
    violations = invariant_violations(backend, {"o1": "CANCELED"})
    assert violations == [
        "stock of WIDGET-1 not conserved: 99 on hand + 5 reserved != 100",
        "order o1 charged 2 times",
        "order o2 refunded 1 times for 0 charge(s)",
        "canceled order o1 left ['payments', 'reservations'] in place",
        "order o1 (CANCELED) charged 2 and refunded 0 times",
    ]
    _charge(backend, "wf3:charge", order_id="o3")
    assert _refund(backend, "wf3:charge", order_id="o3") is True
    assert "completed order o3 charged 1 and refunded 1 times" in invariant_violations(backend, {"o3": "COMPLETED"})


def test_concurrent_charges_of_one_key_apply_once(backend: Database) -> None:
    def attempt(_: int) -> str:
        try:
            return _charge(backend, "wf:charge")
        except Exception as err:  # the losing insert of a race: retried by Temporal
            return type(err).__name__

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert any(outcome.startswith("pay-") for outcome in outcomes)
    assert ledger(backend, "o1") == {CHARGE: 1}  # however many attempts raced, one charge took effect


def test_a_step_belongs_to_the_run_that_applied_it(backend: Database) -> None:
    from sagaworks import StepOwnedByAnotherRun

    _charge(backend, "order-o1:charge")  # applied by run-1
    with backend.transaction() as session, pytest.raises(StepOwnedByAnotherRun):
        apply_once(session, Payment, "order-o1:charge", "run-2", lambda: Payment(saga_id="o1", amount_cents=1))
    with backend.transaction() as session:
        # Another run's compensation leaves the charge alone.
        assert undo_once(session, Payment, "order-o1:charge", "o1", "run-2", lambda row: None) is False
    assert invariant_violations(backend, {}) == []
    with backend.transaction() as session:
        payment = session.get(Payment, "order-o1:charge")
        assert payment is not None and (payment.status, payment.run_id, payment.refund_count) == (DONE, "run-1", 0)


def test_columns_added_by_newer_code_are_added_to_an_older_schema(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the payments table as the first release created it
        conn.execute(
            "CREATE TABLE payments (key VARCHAR(200) PRIMARY KEY, order_id VARCHAR(64), status VARCHAR(16), "
            "reference VARCHAR(64), created_at DATETIME, updated_at DATETIME, amount_cents INTEGER, "
            "refund_count INTEGER)"
        )
        conn.execute("INSERT INTO payments VALUES ('k', 'o', 'DONE', 'p', NULL, NULL, 5, 0)")
    db = Database(f"sqlite:///{path}")
    try:
        with db.transaction() as session:
            payment = session.get(Payment, "k")
            assert payment is not None and payment.run_id is None and payment.amount_cents == 5
        # A row from before ownership was recorded stays usable by the run that retries it.
        with db.transaction() as session:
            assert apply_once(session, Payment, "k", "run-9", lambda: Payment()).key == "k"
    finally:
        db.dispose()


def test_the_store_renames_its_saga_column_keeping_old_rows(db_url: str) -> None:
    """Step tables created when the saga column was called order_id keep their rows, their
    tombstones and their ownership under the neutral name."""
    from sqlalchemy import create_engine, inspect, text

    from sagaworks.activities.db import Base

    old = create_engine(db_url)
    with old.begin() as conn:  # the step tables as the release before the rename created them
        for table, extra in [
            ("customer_accounts", "email VARCHAR(254)"),
            ("payments", "amount_cents INTEGER, refund_count INTEGER"),
            ("notifications", "recipient VARCHAR(254), cancellation_sent_at TIMESTAMP"),
            ("reservations", "lines JSON"),
            ("shipping_labels", "address VARCHAR(500)"),
        ]:
            conn.execute(
                text(
                    f"CREATE TABLE {table} (key VARCHAR(200) PRIMARY KEY, order_id VARCHAR(64) NOT NULL, "
                    f"status VARCHAR(16) NOT NULL, reference VARCHAR(64), run_id VARCHAR(64), created_at TIMESTAMP, "
                    f"updated_at TIMESTAMP, {extra})"
                )
            )
            conn.execute(text(f"CREATE INDEX ix_{table}_order_id ON {table} (order_id)"))
        conn.execute(
            text(
                "INSERT INTO payments (key, order_id, status, reference, run_id, amount_cents, refund_count) "
                "VALUES ('order-o1:charge_payment', 'o1', 'DONE', 'pay-1', 'run-1', 500, 0)"
            )
        )
        conn.execute(
            text(  # a tombstone: the label's compensation overtook it
                "INSERT INTO shipping_labels (key, order_id, status, "
                "run_id) VALUES ('order-o1:label', 'o1', 'UNDONE', 'run-1')"
            )
        )
    # The other tables as they are now: of workers starting at once, only the rename races.
    Base.metadata.create_all(old, tables=[t for t in Base.metadata.sorted_tables if "renamed_columns" not in t.info])
    old.dispose()
    # Workers starting at once: one renames, the others find it done.
    with ThreadPoolExecutor(max_workers=4) as pool:
        db, *others = list(pool.map(lambda _: Database(db_url), range(4)))
    for other in others:
        other.dispose()
    try:
        columns = {c["name"] for c in inspect(db.engine).get_columns("payments")}
        assert "saga_id" in columns and "order_id" not in columns
        with db.transaction() as session:
            payment = session.get(Payment, "order-o1:charge_payment")
            assert payment is not None and (payment.saga_id, payment.amount_cents, payment.run_id) == (
                "o1",
                500,
                "run-1",
            )
            session.add(LedgerEntry(order_id="o1", payment_key=payment.key, kind=CHARGE, amount_cents=500))
        # The tombstone still blocks its step; the charge still belongs to its run.
        with pytest.raises(ApplicationError, match="already compensated"):
            ActivityEnvironment().run(
                OrderActivities(db).create_shipping_label,
                LabelInput(
                    key="order-o1:label",
                    order_id="o1",
                    run_id="run-1",
                    address="1 Main St",
                ),
            )
        assert _refund(db, "order-o1:charge_payment") is True
        assert ledger(db, "o1") == {CHARGE: 1, REFUND: 1}
        assert invariant_violations(db, {"o1": "FAILED"}) == []
    finally:
        db.dispose()


def test_tables_declared_after_the_database_opened_are_created_at_the_next_transaction(tmp_path) -> None:
    """A family's modules are imported when the worker builds its activities, after it opened
    the database: their tables must exist by the time its activities use them."""
    from sqlalchemy import Column, String

    from sagaworks.activities.db import Base

    database = Database(f"sqlite:///{tmp_path / 'late.db'}")

    class LateRow(Base):
        __tablename__ = "late_rows_of_a_test"
        key = Column(String(40), primary_key=True)

    try:
        with database.transaction() as session:
            session.add(LateRow(key="k"))
        with database.transaction() as session:
            assert session.scalars(select(LateRow.key)).all() == ["k"]
    finally:
        database.dispose()
        Base.metadata.remove(LateRow.__table__)  # type: ignore[arg-type]  # a mapped class's __table__ is its Table
