"""Order-fulfilment activities: five database-backed steps and their compensations.

Every step and every compensation is idempotent per key (workflow id + step) through
``db.apply_once`` / ``db.undo_once``, so a retry, a crash or a replay never charges,
reserves or refunds twice, and a compensation that overtakes its step blocks it for good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Integer, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import (
    DONE,
    Base,
    Database,
    StepAlreadyCompensated,
    StepOwnedByAnotherRun,
    StepRecord,
    apply_once,
    undo_once,
)
from activities.errors import database_errors, validation_error
from contracts.orders import (
    AccountInput,
    ChargeInput,
    FailureInjection,
    LabelInput,
    NotificationInput,
    ReserveInput,
    StepInput,
    StepResult,
    UndoInput,
    UndoResult,
)

DEFAULT_STOCK: Mapping[str, int] = {"WIDGET-1": 10_000, "GADGET-2": 5_000, "GIZMO-3": 200}
"""Stock the worker seeds on first start, so samples and demos have something to sell."""


class CustomerAccount(StepRecord):
    __tablename__ = "customer_accounts"
    email: Mapped[str | None] = mapped_column(String(254))


class Payment(StepRecord):
    __tablename__ = "payments"
    amount_cents: Mapped[int | None] = mapped_column(Integer)
    refund_count: Mapped[int] = mapped_column(Integer, default=0)


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


STEP_TABLES: tuple[type[StepRecord], ...] = (
    CustomerAccount,
    Payment,
    Notification,
    Reservation,
    ShippingLabel,
)


def seed_inventory(db: Database, stock: Mapping[str, int] = DEFAULT_STOCK) -> None:
    """Add the SKUs of ``stock`` that the inventory does not have yet."""
    try:
        with db.transaction() as session:
            for sku, units in stock.items():
                if session.get(InventoryItem, sku) is None:
                    session.add(InventoryItem(sku=sku, on_hand=units, total=units))
    except IntegrityError:
        pass  # another worker seeded the same SKUs at the same moment


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
            raise ApplicationError(str(err), type="StepAlreadyCompensated", non_retryable=True)
        except StepOwnedByAnotherRun as err:
            raise ApplicationError(
                f"order {step.order_id} was already processed by another run ({err})",
                type="OrderAlreadyProcessed",
                non_retryable=True,
            )
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
            undone = undo_once(
                session, model, undo.key, undo.order_id, undo.run_id, lambda row: revert(session, row)
            )
        activity.logger.info("Step compensated", extra={"key": undo.key, "undone": undone})
        return UndoResult(undone=undone)

    @activity.defn
    def create_customer_account(self, step: AccountInput) -> StepResult:
        """Create the customer's account for this order."""
        return self._apply(
            CustomerAccount,
            step,
            lambda _s: CustomerAccount(
                order_id=step.order_id, email=step.email, reference=_reference("acct", step.key)
            ),
        )

    @activity.defn
    def delete_customer_account(self, undo: UndoInput) -> UndoResult:
        """Delete the account created for this order (it is kept as a closed record)."""
        return self._undo(CustomerAccount, undo, lambda _s, _row: None)

    @activity.defn
    def charge_payment(self, step: ChargeInput) -> StepResult:
        """Charge the order's total, once."""
        return self._apply(
            Payment,
            step,
            lambda _s: Payment(
                order_id=step.order_id,
                amount_cents=step.amount_cents,
                reference=_reference("pay", step.key),
            ),
        )

    @activity.defn
    def refund_payment(self, undo: UndoInput) -> UndoResult:
        """Refund the order's charge, once."""

        def refund(_session: Session, row: StepRecord) -> None:
            assert isinstance(row, Payment)
            row.refund_count += 1

        return self._undo(Payment, undo, refund)

    @activity.defn
    def send_notification(self, step: NotificationInput) -> StepResult:
        """Send the order confirmation (recorded in the notifications outbox)."""
        return self._apply(
            Notification,
            step,
            lambda _s: Notification(
                order_id=step.order_id, recipient=step.recipient, reference=_reference("msg", step.key)
            ),
        )

    @activity.defn
    def send_cancellation_notice(self, undo: UndoInput) -> UndoResult:
        """Tell the customer the confirmed order was cancelled."""

        def notify(_session: Session, row: StepRecord) -> None:
            assert isinstance(row, Notification)
            row.cancellation_sent_at = datetime.now(timezone.utc)

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
            return Reservation(
                order_id=step.order_id, lines=lines, reference=_reference("res", step.key)
            )

        return self._apply(Reservation, step, reserve)

    @activity.defn
    def release_inventory(self, undo: UndoInput) -> UndoResult:
        """Put the order's reserved units back in stock."""

        def release(session: Session, row: StepRecord) -> None:
            assert isinstance(row, Reservation)
            for sku, quantity in (row.lines or {}).items():
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
                order_id=step.order_id, address=step.address, reference=_reference("trk", step.key)
            ),
        )

    @activity.defn
    def void_shipping_label(self, undo: UndoInput) -> UndoResult:
        """Void the order's shipping label."""
        return self._undo(ShippingLabel, undo, lambda _s, _row: None)


def invariant_violations(db: Database, outcomes: Mapping[str, str]) -> list[str]:
    """Check the saga's invariants; return a line per violation (empty when they hold).

    Args:
        db: The application database.
        outcomes: Order id -> final Temporal status of its saga (``COMPLETED``,
            ``FAILED``, ``CANCELED``...). Orders not named are only checked for stock.
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
        charges = session.execute(
            select(Payment.order_id, func.count())
            .where(Payment.amount_cents.is_not(None))
            .group_by(Payment.order_id)
            .having(func.count() > 1)
        )
        violations.extend(f"order {order} charged {n} times" for order, n in charges)
        for order_id, outcome in outcomes.items():
            done = {
                model.__tablename__
                for model in STEP_TABLES
                if session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.order_id == order_id, model.status == DONE)
                )
            }
            if outcome == "COMPLETED" and len(done) != len(STEP_TABLES):
                missing = sorted({m.__tablename__ for m in STEP_TABLES} - done)
                violations.append(f"completed order {order_id} lacks {missing}")
            elif outcome != "COMPLETED" and done:
                violations.append(f"{outcome.lower()} order {order_id} left {sorted(done)} in place")
            for refunds in session.scalars(
                select(Payment.refund_count).where(
                    Payment.order_id == order_id, Payment.amount_cents.is_not(None)
                )
            ):
                expected = 0 if outcome == "COMPLETED" else 1
                if refunds != expected:
                    violations.append(f"order {order_id} ({outcome}) refunded {refunds} times")
    return violations
