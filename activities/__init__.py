"""Activities: every side effect (database, files, LLM, HTTP), never orchestration.

:func:`build_activities` is the registry the worker serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from activities.db import Database
from activities.documents import DocumentActivities, DocumentSettings
from activities.llm import LLMProvider, provider_from_env
from activities.orders import OrderActivities, seed_inventory

if TYPE_CHECKING:  # imported when used: the CLI imports this package through the catalog
    from activities.query.activities import QuerySettings


def build_activities(
    db: Database,
    llm: LLMProvider | None = None,
    documents: DocumentSettings | None = None,
    query: QuerySettings | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the catalog, bound to ``db``; seeds reference data it needs.

    ``llm`` defaults to :func:`activities.llm.provider_from_env`, ``documents`` to the
    limits in the environment, ``query`` to the query agents the environment configures.
    """
    from activities.query.activities import QueryActivities

    seed_inventory(db)
    orders = OrderActivities(db)
    docs = DocumentActivities(db, llm or provider_from_env(), documents)
    return [
        orders.check_order_items,
        orders.seal_unreached_steps,
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
        docs.validate_document,
        docs.chunk_document,
        docs.extract_concepts,
        docs.store_concepts,
        docs.document_result,
        docs.discard_document_run,
        docs.record_document_failure,
        docs.list_documents,
        *QueryActivities(db, query).activities(),
    ]


def build_llm_activities(db: Database, query: QuerySettings | None = None) -> list[Callable[..., Any]]:
    """The activities of the rate-limited LLM task queue (``workflows.policies.llm_task_queue``)."""
    from activities.query.activities import QueryActivities

    return QueryActivities(db, query).llm_activities()
