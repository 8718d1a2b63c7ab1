"""Order-fulfilment activities: five database-backed steps and their compensations.

Every step and every compensation is idempotent per key (workflow id + step) through the
engine's exactly-once store (``sagaworks.apply_once`` / ``undo_once``), so a retry, a crash, a replay or a reset never
charges, reserves or refunds twice, and a compensation that overtakes its step blocks it
for good. Money movements are journaled in the payment ledger, one entry per charge or
refund that took effect, so "charged twice" is something a check can see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Integer, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks import (
    DONE,
    Base,
    Database,
    StepAlreadyCompensated,
    StepOwnedByAnotherRun,
    StepRecord,
    apply_once,
    database_errors,
    seal_once,
    undo_once,
    validation_error,
)
from sagaworks.contracts.orders import (
    SAMPLE_INVENTORY,
    AccountInput,
    ChargeInput,
    CheckItemsInput,
    FailureInjection,
    LabelInput,
    NotificationInput,
    OrderStep,
    ReserveInput,
    SealStepsInput,
    SealStepsResult,
    StepInput,
    StepResult,
    UndoInput,
    UndoResult,
)

DEFAULT_STOCK: Mapping[str, int] = {entry.sku: entry.stock for entry in SAMPLE_INVENTORY}
"""Stock the worker puts into an empty inventory on first start (``contracts.orders.SAMPLE_INVENTORY``)."""


class CustomerAccount(StepRecord):
    __tablename__ = "customer_accounts"
    email: Mapped[str | None] = mapped_column(String(254))


class Payment(StepRecord):
    __tablename__ = "payments"
    amount_cents: Mapped[int | None] = mapped_column(Integer)
    refund_count: Mapped[int] = mapped_column(Integer, default=0)


CHARGE = "CHARGE"
REFUND = "REFUND"


class LedgerEntry(Base):
    """A money movement that took effect: one row per charge and per refund, never updated.

    Written in the transaction that changes the payment row, so an entry exists exactly
    when the movement happened; the invariants count entries instead of trusting the
    payment table's one-row-per-key constraint.
    """

    __tablename__ = "payment_ledger"
    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    payment_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    """``CHARGE`` or ``REFUND``."""
    amount_cents: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


class Notification(StepRecord):
    __tablename__ = "notifications"
    recipient: Mapped[str | None] = mapped_column(String(254))
    cancellation_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Reservation(StepRecord):
    __tablename__ = "reservations"
    lines: Mapped[dict[str, int] | None] = mapped_column(JSON)


class ShippingLabel(StepRecord):
    __tablename__ = "shipping_labels"
    address: Mapped[str | None] = mapped_column(String(500))


class InventoryItem(Base):
    __tablename__ = "inventory"
    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    """Units owned: on hand plus reserved. Conserved by every reserve and release."""


STEP_MODELS: Mapping[OrderStep, type[StepRecord]] = {
    "create_customer_account": CustomerAccount,
    "charge_payment": Payment,
    "send_notification": Notification,
    "reserve_inventory": Reservation,
    "create_shipping_label": ShippingLabel,
}
"""The table of each step's rows."""

STEP_TABLES: tuple[type[StepRecord], ...] = tuple(STEP_MODELS.values())


def seed_inventory(db: Database, stock: Mapping[str, int] = DEFAULT_STOCK) -> None:
    """Add the SKUs of ``stock`` that the inventory does not have yet."""
    try:
        with db.transaction() as session:
            for sku, units in stock.items():
                if session.get(InventoryItem, sku) is None:
                    session.add(InventoryItem(sku=sku, on_hand=units, total=units))
    except IntegrityError:
        pass  # another worker added the same SKUs at the same moment


def _reference(prefix: str, key: str) -> str:
    # Derived from the key, so every attempt of a step reports the same id.
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _inject(failure: FailureInjection | None) -> None:
    if failure is None:
        return
    info = activity.info()
    if failure.mode == "permanent":
        raise ApplicationError(
            f"injected permanent failure at {info.activity_type}",
            type="InjectedFailure",
            non_retryable=True,
        )
    if info.attempt <= failure.attempts:
        raise ApplicationError(
            f"injected transient failure at {info.activity_type} (attempt {info.attempt})",
            type="InjectedFailure",
        )


class OrderActivities:
    """The order saga's activities, bound to one application database."""

    def __init__(self, db: Database) -> None:
        """Serve the activities from ``db``."""
        self._db = db

    def _apply(
        self,
        model: type[StepRecord],
        step: StepInput,
        create: Callable[[Session], StepRecord],
    ) -> StepResult:
        try:
            with database_errors(), self._db.transaction() as session:
                record = apply_once(session, model, step.key, step.run_id, lambda: create(session))
                reference = record.reference
        except StepAlreadyCompensated as err:
            raise ApplicationError(
                f"order {step.order_id}: {err}; a compensated step (after a failure, a cancel, or "
                "in a run that was reset) never takes effect again: submit a new order to retry",
                type="StepAlreadyCompensated",
                non_retryable=True,
            ) from None
        except StepOwnedByAnotherRun as err:
            raise ApplicationError(
                f"order {step.order_id} was already processed by another run ({err})",
                type="OrderAlreadyProcessed",
                non_retryable=True,
            ) from None
        # apply_once returns only records that took effect (it raises on a tombstone), and every
        # step's create sets a reference: only tombstones have none.
        assert reference is not None, f"{model.__tablename__} {step.key} took effect without a reference"
        activity.logger.info("Step applied", extra={"key": step.key, "reference": reference})
        _inject(step.inject_failure)
        return StepResult(key=step.key, reference=reference)

    def _undo(
        self,
        model: type[StepRecord],
        undo: UndoInput,
        revert: Callable[[Session, StepRecord], None],
    ) -> UndoResult:
        with database_errors(), self._db.transaction() as session:
            undone = undo_once(session, model, undo.key, undo.order_id, undo.run_id, lambda row: revert(session, row))
        activity.logger.info("Step compensated", extra={"key": undo.key, "undone": undone})
        return UndoResult(undone=undone)

    @activity.defn
    def check_order_items(self, check: CheckItemsInput) -> None:
        """Refuse an order for a SKU the inventory does not know, before any step runs."""
        with database_errors(), self._db.transaction() as session:
            known = set(session.scalars(select(InventoryItem.sku)))
        for index, item in enumerate(check.items):
            if item.sku not in known:
                listed = ", ".join(sorted(known)[:20]) or "nothing"
                raise validation_error(
                    f"order {check.order_id}: unknown SKU {item.sku!r} (the inventory has {listed})",
                    field=f"items[{index}].sku",
                )

    @activity.defn
    def seal_unreached_steps(self, seal: SealStepsInput) -> SealStepsResult:
        """Block the steps a failing run never reached; name those that took effect anyway.

        Those were taken by the run before a reset, and the saga undoes them too. The
        others get a tombstone, so a late attempt of that earlier run never takes effect.
        """
        with database_errors(), self._db.transaction() as session:
            taken = [
                step
                for step, key in seal.steps.items()
                if seal_once(session, STEP_MODELS[step], key, seal.order_id, seal.run_id)
            ]
        activity.logger.info("Unreached steps sealed", extra={"order_id": seal.order_id, "taken": taken})
        return SealStepsResult(taken=taken)

    @activity.defn
    def create_customer_account(self, step: AccountInput) -> StepResult:
        """Create the customer's account for this order."""
        return self._apply(
            CustomerAccount,
            step,
            lambda _s: CustomerAccount(saga_id=step.order_id, email=step.email, reference=_reference("acct", step.key)),
        )

    @activity.defn
    def delete_customer_account(self, undo: UndoInput) -> UndoResult:
        """Delete the account created for this order (it is kept as a closed record)."""
        return self._undo(CustomerAccount, undo, lambda _s, _row: None)

    @activity.defn
    def charge_payment(self, step: ChargeInput) -> StepResult:
        """Charge the order's total, once (journaled in the payment ledger)."""

        def charge(session: Session) -> Payment:
            session.add(
                LedgerEntry(order_id=step.order_id, payment_key=step.key, kind=CHARGE, amount_cents=step.amount_cents)
            )
            return Payment(saga_id=step.order_id, amount_cents=step.amount_cents, reference=_reference("pay", step.key))

        return self._apply(Payment, step, charge)

    @activity.defn
    def refund_payment(self, undo: UndoInput) -> UndoResult:
        """Refund the order's charge, once."""

        def refund(session: Session, row: StepRecord) -> None:
            assert isinstance(row, Payment) and row.amount_cents is not None
            row.refund_count += 1
            session.add(
                LedgerEntry(order_id=row.saga_id, payment_key=row.key, kind=REFUND, amount_cents=row.amount_cents)
            )

        return self._undo(Payment, undo, refund)

    @activity.defn
    def send_notification(self, step: NotificationInput) -> StepResult:
        """Send the order confirmation (recorded in the notifications outbox)."""
        return self._apply(
            Notification,
            step,
            lambda _s: Notification(
                saga_id=step.order_id, recipient=step.recipient, reference=_reference("msg", step.key)
            ),
        )

    @activity.defn
    def send_cancellation_notice(self, undo: UndoInput) -> UndoResult:
        """Tell the customer the confirmed order was cancelled."""

        def notify(_session: Session, row: StepRecord) -> None:
            assert isinstance(row, Notification)
            row.cancellation_sent_at = datetime.now(UTC)

        return self._undo(Notification, undo, notify)

    @activity.defn
    def reserve_inventory(self, step: ReserveInput) -> StepResult:
        """Take the order's units out of stock; fail for good when stock is short."""

        def reserve(session: Session) -> Reservation:
            lines: dict[str, int] = {}
            for item in step.items:
                lines[item.sku] = lines.get(item.sku, 0) + item.quantity
            for sku, quantity in sorted(lines.items()):
                taken = session.execute(
                    update(InventoryItem)
                    .where(InventoryItem.sku == sku, InventoryItem.on_hand >= quantity)
                    .values(on_hand=InventoryItem.on_hand - quantity)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    continue
                if session.get(InventoryItem, sku) is None:
                    index = next(i for i, item in enumerate(step.items) if item.sku == sku)
                    raise validation_error(f"unknown SKU {sku!r}", field=f"items[{index}].sku")
                raise ApplicationError(
                    f"not enough stock of {sku} for {quantity} units",
                    type="OutOfStock",
                    non_retryable=True,
                )
            return Reservation(saga_id=step.order_id, lines=lines, reference=_reference("res", step.key))

        return self._apply(Reservation, step, reserve)

    @activity.defn
    def release_inventory(self, undo: UndoInput) -> UndoResult:
        """Put the order's reserved units back in stock."""

        def release(session: Session, row: StepRecord) -> None:
            assert isinstance(row, Reservation)
            # In the sorted order reserve_inventory takes the same row locks: two
            # transactions that lock the same SKUs in opposite orders deadlock.
            for sku, quantity in sorted((row.lines or {}).items()):
                session.execute(
                    update(InventoryItem)
                    .where(InventoryItem.sku == sku)
                    .values(on_hand=InventoryItem.on_hand + quantity)
                )

        return self._undo(Reservation, undo, release)

    @activity.defn
    def create_shipping_label(self, step: LabelInput) -> StepResult:
        """Buy the shipping label for the order."""
        return self._apply(
            ShippingLabel,
            step,
            lambda _s: ShippingLabel(
                saga_id=step.order_id, address=step.address, reference=_reference("trk", step.key)
            ),
        )

    @activity.defn
    def void_shipping_label(self, undo: UndoInput) -> UndoResult:
        """Void the order's shipping label."""
        return self._undo(ShippingLabel, undo, lambda _s, _row: None)


def invariant_violations(db: Database, outcomes: Mapping[str, str]) -> list[str]:
    """Check the saga's invariants; return a line per violation (empty when they hold).

    Stock is conserved (on hand plus reserved equals owned), no order is charged more than
    once (counted in the payment ledger), a completed order holds every step and exactly
    one charge, and an order that ended otherwise holds no step and had each charge
    refunded exactly once.

    Args:
        db: The application database.
        outcomes: Order id -> final Temporal status of its saga (``COMPLETED``,
            ``FAILED``, ``CANCELED``...). Orders not named are only checked for stock, for
            double charges and for refunds without a charge.
    """
    violations: list[str] = []
    with db.transaction() as session:
        reserved: dict[str, int] = {}
        for lines in session.scalars(select(Reservation.lines).where(Reservation.status == DONE)):
            for sku, quantity in (lines or {}).items():
                reserved[sku] = reserved.get(sku, 0) + quantity
        for item in session.scalars(select(InventoryItem)):
            if item.on_hand + reserved.get(item.sku, 0) != item.total:
                violations.append(
                    f"stock of {item.sku} not conserved: {item.on_hand} on hand + "
                    f"{reserved.get(item.sku, 0)} reserved != {item.total}"
                )
        ledger: dict[str, dict[str, int]] = {}
        for order_id, kind, count in session.execute(
            select(LedgerEntry.order_id, LedgerEntry.kind, func.count()).group_by(
                LedgerEntry.order_id, LedgerEntry.kind
            )
        ):
            ledger.setdefault(order_id, {})[kind] = count
        for order_id, entries in sorted(ledger.items()):
            charges, refunds = entries.get(CHARGE, 0), entries.get(REFUND, 0)
            if charges > 1:
                violations.append(f"order {order_id} charged {charges} times")
            if refunds > charges:
                violations.append(f"order {order_id} refunded {refunds} times for {charges} charge(s)")
        for order_id, outcome in outcomes.items():
            done = {
                model.__tablename__
                for model in STEP_TABLES
                if session.scalar(
                    select(func.count()).select_from(model).where(model.saga_id == order_id, model.status == DONE)
                )
            }
            charges = ledger.get(order_id, {}).get(CHARGE, 0)
            refunds = ledger.get(order_id, {}).get(REFUND, 0)
            if outcome == "COMPLETED":
                if len(done) != len(STEP_TABLES):
                    missing = sorted({m.__tablename__ for m in STEP_TABLES} - done)
                    violations.append(f"completed order {order_id} lacks {missing}")
                if charges != 1 or refunds:
                    violations.append(f"completed order {order_id} charged {charges} and refunded {refunds} times")
            else:
                if done:
                    violations.append(f"{outcome.lower()} order {order_id} left {sorted(done)} in place")
                if refunds != charges:
                    violations.append(f"order {order_id} ({outcome}) charged {charges} and refunded {refunds} times")
    return violations
