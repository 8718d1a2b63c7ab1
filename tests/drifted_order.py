"""An incompatible edit of the order saga, for proving that replay catches one."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.contracts.orders import OrderInput, OrderResult
    from sagaworks.workflows.order import OrderFulfillmentSaga, _Step


@workflow.defn(name="OrderFulfillmentSaga")
class DriftedOrderSaga(OrderFulfillmentSaga):
    """Charges before creating the account: a reordering no running saga can follow."""

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        return await super().run(order)

    def _plan(self, order: OrderInput) -> list[_Step]:
        account, charge, *rest = super()._plan(order)
        return [charge, account, *rest]
