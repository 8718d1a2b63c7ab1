"""Activities: every side effect (database, files, LLM, HTTP), never orchestration.

:func:`build_activities` is the registry the worker serves.
"""

from collections.abc import Callable
from typing import Any

from activities.db import Database
from activities.orders import OrderActivities, seed_inventory


def build_activities(db: Database) -> list[Callable[..., Any]]:
    """Every activity of the catalog, bound to ``db``; seeds reference data it needs."""
    seed_inventory(db)
    orders = OrderActivities(db)
    return [
        orders.create_customer_account,
        orders.delete_customer_account,
        orders.charge_payment,
        orders.refund_payment,
        orders.send_notification,
        orders.send_cancellation_notice,
        orders.reserve_inventory,
        orders.release_inventory,
        orders.create_shipping_label,
        orders.void_shipping_label,
    ]
