"""The side effects: one row per step, applied once and undone once, whatever retries."""

import uuid

from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

import sagaworks
from shop.models import Step


class SignupRecord(sagaworks.StepRecord):
    __tablename__ = "shop_signup_steps"
    what: Mapped[str | None] = mapped_column()  # None on a tombstone


class SignupActivities:
    def __init__(self, db: sagaworks.Database) -> None:
        self.db = db

    def _apply(self, step: Step, what: str) -> str:
        if step.signup.inject_failure == activity.info().activity_type:
            raise ApplicationError(f"{what} refused", type="InjectedFailure", non_retryable=True)
        with self.db.transaction() as session:
            record = sagaworks.apply_once(
                session,
                SignupRecord,
                step.key,
                step.run_id,
                lambda: SignupRecord(saga_id=step.signup.signup_id, reference=uuid.uuid4().hex[:12], what=what),
            )
            return record.reference or ""

    def _undo(self, step: Step) -> None:
        with self.db.transaction() as session:
            sagaworks.undo_once(
                session, SignupRecord, step.key, step.signup.signup_id, step.run_id, lambda record: None
            )

    @activity.defn
    def create_account(self, step: Step) -> str:
        return self._apply(step, f"account for {step.signup.email}")

    @activity.defn
    def close_account(self, step: Step) -> None:
        self._undo(step)

    @activity.defn
    def charge_card(self, step: Step) -> str:
        return self._apply(step, f"charge of {step.signup.price_cents} cents")

    @activity.defn
    def refund_card(self, step: Step) -> None:
        self._undo(step)

    @activity.defn
    def send_welcome(self, step: Step) -> str:
        return self._apply(step, f"welcome mail to {step.signup.email}")

    def all(self) -> list:
        return [self.create_account, self.close_account, self.charge_card, self.refund_card, self.send_welcome]
