"""Contracts of the order-fulfilment saga: its input, result, status and step payloads.

They live apart from the workflow so that activities and the client import them without
importing workflow code. Every model forbids unknown fields and validates strictly: a
wrong type or an out-of-range number fails the workflow at once with the field named.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from sagaworks import StepStatus, StrictModel, Text

OrderStep = Literal[
    "create_customer_account",
    "charge_payment",
    "send_notification",
    "reserve_inventory",
    "create_shipping_label",
]
ORDER_STEPS: tuple[OrderStep, ...] = get_args(OrderStep)


def order_workflow_id(order_id: str) -> str:
    """The workflow id of an order's saga: one saga per order, ever."""
    return f"order-{order_id}"


class InventoryEntry(StrictModel):
    """One product of an inventory: its SKU, its name and the units in stock."""

    sku: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,31}$")
    name: str
    stock: int = Field(ge=0)


SAMPLE_INVENTORY: tuple[InventoryEntry, ...] = (
    InventoryEntry(sku="WIDGET-1", name="Widget", stock=10_000),
    InventoryEntry(sku="GADGET-2", name="Gadget", stock=5_000),
    InventoryEntry(sku="GIZMO-3", name="Gizmo", stock=200),
)
"""The products the worker seeds on first start, so samples and demos have something to
sell. Orders for any other SKU are refused before anyone is charged."""


class FailureInjection(StrictModel):
    """A failure to inject at one step, for demos and tests of retries and compensation.

    The injected failure happens after the step's write committed, like a response lost
    on the way back: the retry or the compensation must cope with a step that took effect.
    """

    step: OrderStep
    mode: Literal["transient", "permanent"]
    attempts: int = Field(default=2, ge=1, le=7)
    """For ``transient``: how many attempts fail before one succeeds (the step's policy
    allows 8 attempts)."""


class OrderItem(StrictModel):
    """One line of an order."""

    sku: Text = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,31}$")
    quantity: int = Field(gt=0, le=1000)
    unit_price_cents: int = Field(gt=0, le=10_000_000)


_EMAIL_PART = r"[^@\s\u0000-\u001F\u007F-\u009F]"


class OrderInput(StrictModel):
    """Start an order-fulfilment saga."""

    order_id: Text = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    # No @, space or control character in any part: the pattern is the whole rule.
    customer_email: Text = Field(max_length=254, pattern=rf"^{_EMAIL_PART}+@{_EMAIL_PART}+\.{_EMAIL_PART}+$")
    items: list[OrderItem] = Field(min_length=1, max_length=50)
    shipping_address: Text = Field(min_length=1, max_length=500)
    inject_failure: FailureInjection | None = None
    parallel_compensation: bool = False
    """Undo the completed steps concurrently instead of in reverse order."""
    step_delay_seconds: float = Field(default=0, ge=0, le=3600)
    """A durable timer between steps, so a demo can pause, cancel or crash mid-saga."""
    local_steps: bool | None = None
    """Run the SKU check and the five steps as local activities (the default, None, since
    workflows/order.py LOCAL_STEPS_PATCH; each step is short, idempotent and touches only
    the application database, which is when a step may be local): several times less latency
    and server CPU, but the history records their results only (no inputs, no retry
    events); False runs them as (remote) activities. Compensations are always remote."""

    @property
    def amount_cents(self) -> int:
        """The total to charge."""
        return sum(item.quantity * item.unit_price_cents for item in self.items)


class StepInput(StrictModel):
    """What every forward step receives: its idempotency key and its order."""

    key: str
    order_id: str
    run_id: str | None = None
    """The owner of the step's row: the first run id of the workflow execution, which a
    Temporal reset keeps (a reset run repeats its steps on the same rows and undoes them),
    while the same order submitted again after it closed gets a new one (and is refused)."""
    inject_failure: FailureInjection | None = None


class AccountInput(StepInput):
    email: str


class ChargeInput(StepInput):
    amount_cents: int


class NotificationInput(StepInput):
    recipient: str


class ReserveInput(StepInput):
    items: list[OrderItem]


class LabelInput(StepInput):
    address: str


class CheckItemsInput(StrictModel):
    """The order lines whose SKUs the inventory must know before the saga takes any step."""

    order_id: str
    items: list[OrderItem]


class SealStepsInput(StrictModel):
    """The steps a failing or cancelled run never reached, each with its idempotency key."""

    order_id: str
    run_id: str | None = None
    steps: dict[OrderStep, str]


class SealStepsResult(StrictModel):
    """The unreached steps that took effect anyway (a run before a reset took them)."""

    taken: list[OrderStep]


class StepResult(StrictModel):
    """A forward step's outcome: the id of what it created (account, payment, label...)."""

    key: str
    reference: str


class UndoInput(StrictModel):
    """What every compensation receives: the idempotency key of the step it undoes."""

    key: str
    order_id: str
    run_id: str | None = None


class UndoResult(StrictModel):
    """Whether the compensation found the step's effect and reversed it."""

    undone: bool


class OrderStatus(StepStatus):
    """The live state of an order saga, answered by the ``status`` query."""

    order_id: str


class OrderResult(BaseModel):
    """A fulfilled order."""

    order_id: str
    amount_cents: int
    references: dict[str, str]
    """Step name -> id of what it created (account, payment, message, reservation, label)."""
