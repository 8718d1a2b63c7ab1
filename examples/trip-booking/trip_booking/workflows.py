"""The trip saga and the publishing pipeline: orchestration only, every effect an activity."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import Approval, ApprovalUpdates, Escalation, StepWorkflow

    from trip_booking.activities import TripActivities, draft_article, publish_article, review_article
    from trip_booking.models import BookingStep, PostInput, PostResult, PostStatus, TripInput, TripResult

TRIP_STEPS = ("reserve_hotel", "book_flight", "charge_card", "send_confirmation")


@workflow.defn
class TripSaga(StepWorkflow):
    """Hotel, flight, card, confirmation; a failure or a cancel undoes them in reverse."""

    @workflow.run
    async def run(self, trip: TripInput) -> TripResult:
        acts = TripActivities
        undo = {"reserve_hotel": acts.cancel_hotel, "book_flight": acts.cancel_flight, "charge_card": acts.refund_card}
        references = {}
        async with self.steps.plan(TRIP_STEPS) as steps:
            for name in TRIP_STEPS:
                step = BookingStep(key=steps.key(name), run_id=steps.origin_run_id, trip=trip)
                references[name] = await steps.run(
                    name, getattr(acts, name), step, undo=undo.get(name), delay=trip.step_delay_seconds
                )
        return TripResult(trip_id=trip.trip_id, references=references)


@workflow.defn
class PublishingPipeline(StepWorkflow, ApprovalUpdates):
    """Draft, review, wait for an editor's approval (escalating at the deadline), publish."""

    def __init__(self) -> None:
        super().__init__()
        self.approval = Approval()

    @workflow.run
    async def run(self, post: PostInput) -> PostResult:
        async with self.steps.plan(("draft", "review", "publish")) as steps:
            draft = await steps.run("draft", draft_article, post)
            reviewed = await steps.run("review", review_article, draft)
            deadline = timedelta(seconds=post.deadline_seconds)
            decision = await self.approval.wait(
                deadline, approvers=[post.approver], escalations=[Escalation(["chief-editor"], deadline * 30)]
            )
            if decision.decision == "approved":
                await steps.run("publish", publish_article, reviewed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostResult(
            topic=post.topic,
            published=decision.decision == "approved",
            decided_by=decision.decided_by,
            text=reviewed.text,
            escalation=decision.escalation,
        )

    @workflow.query
    def status(self) -> PostStatus:
        return PostStatus(**dict(self.steps.status()), **dict(self.approval.progress()))
