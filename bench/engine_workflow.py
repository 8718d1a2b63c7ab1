"""The order saga's steps in a plain hand-written Temporal workflow: what the step runner
is measured against (bench/engine.py).

The same activities, inputs and policies as ``OrderFulfillmentSaga`` (the SKU check, then
five steps as local activities, each undo registered before its step and run in reverse on
a failure), without the engine: no status, pause, timings or restart.
:class:`PatchedPlainOrderSaga` also asks for the order saga's two patches, as every new run
of it does (two markers and two search-attribute upserts in each history): the difference
between the two plain rows is what the patches cost, not the engine.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import policies
    from sagaworks.activities.orders import OrderActivities
    from sagaworks.contracts.orders import (
        AccountInput,
        ChargeInput,
        CheckItemsInput,
        LabelInput,
        NotificationInput,
        OrderInput,
        OrderResult,
        ReserveInput,
        UndoInput,
    )


@workflow.defn
class PlainOrderSaga:
    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        acts = OrderActivities
        wid, run_id = workflow.info().workflow_id, workflow.info().first_execution_run_id

        def common(step: str) -> dict[str, Any]:
            return {"key": f"{wid}:{step}", "order_id": order.order_id, "run_id": run_id}

        steps = [
            (
                "create_customer_account",
                acts.create_customer_account,
                acts.delete_customer_account,
                AccountInput(email=order.customer_email, **common("create_customer_account")),
            ),
            (
                "charge_payment",
                acts.charge_payment,
                acts.refund_payment,
                ChargeInput(amount_cents=order.amount_cents, **common("charge_payment")),
            ),
            (
                "send_notification",
                acts.send_notification,
                acts.send_cancellation_notice,
                NotificationInput(recipient=order.customer_email, **common("send_notification")),
            ),
            (
                "reserve_inventory",
                acts.reserve_inventory,
                acts.release_inventory,
                ReserveInput(items=order.items, **common("reserve_inventory")),
            ),
            (
                "create_shipping_label",
                acts.create_shipping_label,
                acts.void_shipping_label,
                LabelInput(address=order.shipping_address, **common("create_shipping_label")),
            ),
        ]
        await workflow.execute_local_activity(  # type: ignore[call-overload]  # a sync activity method named through its class, as registered
            acts.check_order_items,
            CheckItemsInput(order_id=order.order_id, items=order.items),
            **policies.DATABASE_WRITE,
        )
        undos: list[tuple[Any, UndoInput]] = []
        references: dict[str, str] = {}
        try:
            for name, run, undo, arg in steps:
                undos.append((undo, UndoInput(key=arg.key, order_id=arg.order_id, run_id=arg.run_id)))
                call = workflow.execute_local_activity(run, arg, **policies.DATABASE_WRITE)  # type: ignore[call-overload]  # a step's activity method named through its class, as registered
                references[name] = (await call).reference
        except Exception:
            for undo, undo_arg in reversed(undos):
                await workflow.execute_activity(undo, undo_arg, **policies.COMPENSATION)
            raise
        return OrderResult(order_id=order.order_id, amount_cents=order.amount_cents, references=references)


@workflow.defn
class PatchedPlainOrderSaga(PlainOrderSaga):
    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        # The order saga's LOCAL_STEPS_PATCH and CHECK_ITEMS_PATCH, in its order.
        workflow.patched("local-steps-by-default")
        workflow.patched("check-items-before-any-step")
        return await super().run(order)
