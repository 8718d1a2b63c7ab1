"""The order-fulfilment saga: five steps, each undone in reverse if a later one fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import ErrorClass, StepWorkflow, policies, run_to_completion
    from sagaworks.activities.orders import OrderActivities
    from sagaworks.contracts.orders import (
        ORDER_STEPS,
        AccountInput,
        ChargeInput,
        CheckItemsInput,
        LabelInput,
        NotificationInput,
        OrderInput,
        OrderResult,
        OrderStatus,
        OrderStep,
        ReserveInput,
        SealStepsInput,
        SealStepsResult,
        StepInput,
        UndoInput,
        order_workflow_id,
    )


# Deprecated patches (docs/patches.md): every open run took the new branch when they were
# deprecated, so the old branches are gone; the calls stay, writing the markers that the
# histories recorded under workflow.patched hold, until no open run holds such a marker.

CHECK_ITEMS_PATCH = "check-items-before-any-step"
"""Runs started before it took their first step without asking the inventory about SKUs."""

SEAL_UNREACHED_PATCH = "seal-unreached-steps"
"""Runs started before it compensated only the steps they reached, even after a reset."""

LOCAL_STEPS_PATCH = "local-steps-by-default"
"""Runs started before it ran the SKU check and (unless asked for local steps) the steps as
remote activities."""


@dataclass(frozen=True)
class _Step:
    name: OrderStep
    run: Callable[..., Any]
    undo: Callable[..., Any]
    input: StepInput

    @property
    def undo_input(self) -> UndoInput:
        return UndoInput(key=self.input.key, order_id=self.input.order_id, run_id=self.input.run_id)


# A ValidationError while decoding the input fails the workflow (naming the field) instead
# of failing the workflow task, which Temporal would retry forever.
@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class OrderFulfillmentSaga(StepWorkflow):
    """Create account -> charge -> notify -> reserve stock -> ship, or undo what was done.

    Each compensation is registered before its step runs, because a step can take effect
    and still fail (its response lost); compensations are no-ops for steps that never ran.

    A Temporal reset is supported: step rows belong to the workflow's first execution run
    id, which a reset keeps, so the reset run repeats the steps after the reset point on
    the same rows (idempotently) and its compensations undo them. A run that fails or is
    cancelled first seals the steps it never reached (``seal_unreached_steps``): those the
    run before a reset took are undone too, the others can no longer take effect. (Every
    run does it: whether a run was reset is not visible to its code in a replay.) A run
    restarted from a step (``saga restart ID --from STEP``) owns the rows of the run it
    restarted, so its reused steps are undone like its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._order_id = ""

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        """Fulfil ``order``; on failure compensate and fail with a ``SagaCompensated`` error."""
        self._order_id = order.order_id
        plan = self._plan(order)
        references: dict[str, str] = {}
        # Short, idempotent, database-only steps: local activities unless the order says
        # otherwise: a local activity saves a server round trip per step.
        workflow.deprecate_patch(LOCAL_STEPS_PATCH)
        local = True if order.local_steps is None else order.local_steps
        async with self.steps.plan(
            ORDER_STEPS, local=local, parallel_compensation=order.parallel_compensation
        ) as steps:
            # An unknown SKU would otherwise surface at reserve_inventory, after the charge.
            workflow.deprecate_patch(CHECK_ITEMS_PATCH)
            check = CheckItemsInput(order_id=order.order_id, items=order.items)
            if local:
                # DATABASE_WRITE sets only a timeout and a retry policy, which a local activity takes;
                # its type, ActivityOptions, also allows keys (task queue, heartbeat) a local one refuses.
                await workflow.execute_local_activity_method(  # type: ignore[call-overload]
                    OrderActivities.check_order_items, check, summary="check items", **policies.DATABASE_WRITE
                )
            else:
                await workflow.execute_activity_method(
                    OrderActivities.check_order_items, check, summary="check items", **policies.DATABASE_WRITE
                )
            try:
                for index, step in enumerate(plan):
                    delay = order.step_delay_seconds if index else 0
                    done = await steps.run(
                        step.name, step.run, step.input, undo=step.undo, undo_arg=step.undo_input, delay=delay
                    )
                    references[step.name] = done.reference
            except BaseException as err:
                unreached = plan[len(steps.started) :]
                compensates = isinstance(err, FailureError) or is_cancelled_exception(err)
                if unreached and compensates:
                    workflow.deprecate_patch(SEAL_UNREACHED_PATCH)
                    for taken in await self._taken_anyway(unreached):
                        steps.saga.add_compensation(taken.undo, taken.undo_input, step=taken.name)
                raise
        return OrderResult(order_id=order.order_id, amount_cents=order.amount_cents, references=references)

    async def _taken_anyway(self, unreached: list[_Step]) -> list[_Step]:
        """Seal the steps this run never reached; return those that took effect anyway."""
        seal = SealStepsInput(
            order_id=self._order_id,
            run_id=unreached[0].input.run_id,
            steps={step.name: step.input.key for step in unreached},
        )
        try:
            # Shielded like the compensations: a second cancel must not skip it.
            sealed: SealStepsResult = await run_to_completion(
                workflow.execute_activity_method(
                    OrderActivities.seal_unreached_steps, seal, summary="seal unreached steps", **policies.COMPENSATION
                ),
                reraise_cancel=False,
            )
        except ActivityError:
            # Undoing a step nobody took is harmless (a tombstone): undo them all.
            workflow.logger.error("Sealing the unreached steps failed; undoing each of them")
            return unreached
        return [step for step in unreached if step.name in sealed.taken]

    def _plan(self, order: OrderInput) -> list[_Step]:
        # Keys derive from the order, not from whoever started the workflow: a second
        # workflow for the same order would otherwise charge it again.
        workflow_id = order_workflow_id(order.order_id)
        if workflow.info().workflow_id != workflow_id:
            raise ApplicationError(
                f"workflow id must be {workflow_id!r}: one saga per order",
                type=ErrorClass.VALIDATION,
                non_retryable=True,
            )

        def common(name: str) -> dict[str, Any]:
            failure = order.inject_failure
            return {
                "key": self.steps.key(name),
                "order_id": order.order_id,
                "run_id": self.steps.origin_run_id,
                "inject_failure": failure if failure and failure.step == name else None,
            }

        acts = OrderActivities
        return [
            _Step(
                "create_customer_account",
                acts.create_customer_account,
                acts.delete_customer_account,
                AccountInput(email=order.customer_email, **common("create_customer_account")),
            ),
            _Step(
                "charge_payment",
                acts.charge_payment,
                acts.refund_payment,
                ChargeInput(amount_cents=order.amount_cents, **common("charge_payment")),
            ),
            _Step(
                "send_notification",
                acts.send_notification,
                acts.send_cancellation_notice,
                NotificationInput(recipient=order.customer_email, **common("send_notification")),
            ),
            _Step(
                "reserve_inventory",
                acts.reserve_inventory,
                acts.release_inventory,
                ReserveInput(items=order.items, **common("reserve_inventory")),
            ),
            _Step(
                "create_shipping_label",
                acts.create_shipping_label,
                acts.void_shipping_label,
                LabelInput(address=order.shipping_address, **common("create_shipping_label")),
            ),
        ]

    @workflow.query
    def status(self) -> OrderStatus:
        """Current step, completed steps, their timings and compensations run so far."""
        return OrderStatus(order_id=self._order_id, **dict(self.steps.status()))
