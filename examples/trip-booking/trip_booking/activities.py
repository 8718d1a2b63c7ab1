"""The side effects: bookings in the application database, each applied and undone once."""

import uuid
from pathlib import Path

from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity
from temporalio.exceptions import ApplicationError

import sagaworks

from trip_booking.models import BookingStep, Draft, PostInput


class Booking(sagaworks.StepRecord):
    """One row per booking step (hotel, flight, charge, confirmation) of a trip."""

    __tablename__ = "trip_bookings"
    what: Mapped[str | None] = mapped_column()  # None on a tombstone (an undo that ran first)


class TripActivities:
    def __init__(self, db: sagaworks.Database) -> None:
        self.db = db

    def _apply(self, step: BookingStep, what: str) -> str:
        if step.trip.fail_at == activity.info().activity_type:
            raise ApplicationError(f"{what} refused for trip {step.trip.trip_id}", non_retryable=True)
        with self.db.transaction() as session:
            record = sagaworks.apply_once(
                session,
                Booking,
                step.key,
                step.run_id,
                lambda: Booking(
                    saga_id=step.trip.trip_id, status=sagaworks.DONE, reference=uuid.uuid4().hex[:12], what=what
                ),
            )
            return record.reference or ""

    def _undo(self, step: BookingStep) -> None:
        with self.db.transaction() as session:
            sagaworks.undo_once(session, Booking, step.key, step.trip.trip_id, step.run_id, lambda record: None)

    @activity.defn
    def reserve_hotel(self, step: BookingStep) -> str:
        return self._apply(step, f"hotel {step.trip.hotel}")

    @activity.defn
    def cancel_hotel(self, step: BookingStep) -> None:
        self._undo(step)

    @activity.defn
    def book_flight(self, step: BookingStep) -> str:
        return self._apply(step, f"flight {step.trip.flight}")

    @activity.defn
    def cancel_flight(self, step: BookingStep) -> None:
        self._undo(step)

    @activity.defn
    def charge_card(self, step: BookingStep) -> str:
        return self._apply(step, f"charge of {step.trip.amount_cents} cents")

    @activity.defn
    def refund_card(self, step: BookingStep) -> None:
        self._undo(step)

    @activity.defn
    def send_confirmation(self, step: BookingStep) -> str:
        return self._apply(step, f"confirmation to {step.trip.traveller}")

    def all(self) -> list:
        return [
            self.reserve_hotel,
            self.cancel_hotel,
            self.book_flight,
            self.cancel_flight,
            self.charge_card,
            self.refund_card,
            self.send_confirmation,
        ]


@activity.defn
def draft_article(post: PostInput) -> Draft:
    words = post.topic.split()
    text = f"# {post.topic}\n\n" + "\n".join(f"- Why {word} matters" for word in words)
    return Draft(topic=post.topic, text=text)


@activity.defn
def review_article(draft: Draft) -> Draft:
    lines = draft.text.splitlines()
    issues = [f"line {n}: repeated line" for n, line in enumerate(lines, 1) if line and lines.count(line) > 1]
    return draft.model_copy(update={"issues": issues})


@activity.defn
def publish_article(draft: Draft) -> str:
    """Writes the post where the site is built from; the same post twice is the same file."""
    folder = Path("published")
    folder.mkdir(exist_ok=True)
    path = folder / f"{uuid.uuid5(uuid.NAMESPACE_URL, draft.topic).hex}.md"
    path.write_text(draft.text)
    return str(path)
