"""Property tests of the input models: any JSON either validates or is refused cleanly."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sagaworks.client.connection import DATA_CONVERTER
from sagaworks.contracts.document import DocumentInput
from sagaworks.contracts.orders import ORDER_STEPS, OrderInput

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
fields = st.sampled_from([*OrderInput.model_fields, "items", "junk"])


@given(st.dictionaries(fields, json_values, max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_validates_or_raises_a_validation_error(data: dict[str, Any]) -> None:
    try:
        OrderInput.model_validate(data)
    except ValidationError as invalid:
        # Each error names the field it is about (one the input gave or the model has),
        # and the message a user sees names it too.
        for error in invalid.errors():
            assert error["loc"] and error["loc"][0] in {*data, *OrderInput.model_fields}, error
            assert str(error["loc"][0]) in str(invalid)


items = st.fixed_dictionaries(
    {
        "sku": st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,31}", fullmatch=True),
        "quantity": st.integers(1, 1000),
        "unit_price_cents": st.integers(1, 10_000_000),
    }
)
orders = st.fixed_dictionaries(
    {
        "order_id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
        "customer_email": st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}\.[a-z]{2,4}", fullmatch=True),
        "items": st.lists(items, min_size=1, max_size=50),
        "shipping_address": st.text(
            st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=500
        ),
    },
    optional={
        "inject_failure": st.fixed_dictionaries(
            {"step": st.sampled_from(ORDER_STEPS), "mode": st.sampled_from(["transient", "permanent"])}
        ),
        "step_delay_seconds": st.floats(0, 3600),
    },
)


@given(orders)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_orders_round_trip_through_the_data_converter(data: dict[str, Any]) -> None:
    order = OrderInput.model_validate(data)
    payloads = DATA_CONVERTER.payload_converter.to_payloads([order])
    [decoded] = DATA_CONVERTER.payload_converter.from_payloads(payloads, [OrderInput])
    assert decoded == order
    assert order.amount_cents == sum(i["quantity"] * i["unit_price_cents"] for i in data["items"])


@given(st.text(max_size=300))
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_document_paths_with_control_characters_are_always_refused(path: str) -> None:
    try:
        DocumentInput(path=path)
    except ValidationError:
        return
    assert path and not any(ord(c) < 32 and c not in "\t\n\r" or ord(c) == 127 for c in path)
