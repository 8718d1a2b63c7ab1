"""The registrations sagaworks finds through this project's entry points."""

from sagaworks import ApprovalDeclaration, Family

from trip_booking import activities
from trip_booking.models import PostInput, TripInput
from trip_booking.workflows import PublishingPipeline, TripSaga

TRIP = Family(
    "trip",
    workflow=TripSaga,
    input_model=TripInput,
    description="Book a trip: hotel, flight, card, confirmation; undone in reverse on failure or cancel.",
    workflow_id=lambda trip: f"trip-{trip.trip_id}",
    id_reuse_policy="REJECT_DUPLICATE",
    activities=lambda worker: activities.TripActivities(worker.db).all(),
)

PUBLISHING = Family(
    "publishing",
    workflow=PublishingPipeline,
    input_model=PostInput,
    description="Draft, review, an editor's approval (escalating at its deadline), publish.",
    activities=[activities.draft_article, activities.review_article, activities.publish_article],
    updates=("approve", "reject"),
    approval=ApprovalDeclaration(subject="this post", escalation="it is rejected automatically"),
)
