"""Activities: every side effect (database, files, LLM, HTTP), never orchestration.

:func:`build_activities` is the registry the worker serves.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from sagaworks.activities.db import Database
from sagaworks.activities.documents import DocumentActivities, DocumentSettings
from sagaworks.activities.llm import LLMProvider, provider_from_env
from sagaworks.activities.mcp_support import notify_escalation
from sagaworks.activities.orders import OrderActivities, seed_inventory
from sagaworks.activities import sequential, text_analysis
from sagaworks.activities.llm_analysis import ChatAnalysisActivities
from sagaworks.activities.news import NewsActivities
from sagaworks.activities.routing import RoutingActivities
from sagaworks.activities.search import SearchActivities
from sagaworks.activities.support_classifier import TicketClassifier
from sagaworks.activities.writing import WritingActivities, chat_from_env, writer_for


CPU_BOUND: list[Callable[..., Any]] = [
    sequential.ingest_text,
    sequential.process_text,
    sequential.analyse_text,
    sequential.render_report,
    text_analysis.analyse_sentiment,
    text_analysis.extract_keywords,
    text_analysis.frequent_keywords,
    text_analysis.summarise_text,
    text_analysis.lead_summary,
    text_analysis.detect_language,
]
"""Pure CPU-bound activities (module functions, no database): worker.py serves them from a
process pool on the CPU task queue (see workflows/cpu.py)."""

if TYPE_CHECKING:  # imported when used: the CLI imports this package through the catalog
    from sagaworks.activities.plans.activities import PlanSettings
    from sagaworks.activities.query.activities import QuerySettings


def build_activities(
    db: Database,
    llm: LLMProvider | None = None,
    documents: DocumentSettings | None = None,
    query: QuerySettings | None = None,
    plans: PlanSettings | None = None,
    cpu_pool: Executor | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the catalog, bound to ``db``; seeds reference data it needs.

    ``llm`` defaults to :func:`activities.llm.provider_from_env`, ``documents`` to the
    limits in the environment, ``query`` to the query agents the environment configures.
    ``cpu_pool`` (the worker's process pool) runs the CPU-bound parts of the document
    activities: parsing, splitting and the offline provider's YAKE.
    """
    from sagaworks.activities.plans.activities import PlanActivities
    from sagaworks.activities.query.activities import QueryActivities

    seed_inventory(db)
    orders = OrderActivities(db)
    docs = DocumentActivities(db, llm or provider_from_env(cpu_pool), documents, cpu_pool)
    chat = chat_from_env()
    routing = RoutingActivities(db, chat)
    search = SearchActivities(db)
    writing = WritingActivities(writer_for(chat))
    news = NewsActivities(db, documents, chat)
    chat_analysis = ChatAnalysisActivities(chat)
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
        docs.resolve_document,
        docs.validate_document,
        docs.chunk_document,
        docs.extract_concepts,
        docs.store_concepts,
        docs.document_result,
        docs.finalise_document,
        docs.discard_document_run,
        docs.record_document_failure,
        docs.list_documents,
        routing.classify_request,
        routing.handle_admin,
        routing.handle_premium,
        routing.handle_standard,
        routing.record_rejection,
        search.search_chunks,
        search.evaluate_hits,
        search.refine_query,
        writing.outline_post,
        writing.draft_post,
        writing.review_post,
        news.fetch_feed,
        news.cached_feed,
        news.select_articles,
        news.categorise_and_summarise,
        news.build_newsletter,
        news.store_digest,
        chat_analysis.llm_sentiment,
        chat_analysis.llm_keywords,
        chat_analysis.llm_summary,
        *QueryActivities(db, query).activities(),
        *PlanActivities(db, plans).activities(),
        notify_escalation,
    ]


def build_llm_activities(
    db: Database,
    query: QuerySettings | None = None,
    tickets: TicketClassifier | None = None,
    plans: PlanSettings | None = None,
) -> list[Callable[..., Any]]:
    """The activities of the rate-limited LLM task queue (``sagaworks.policies.llm_task_queue``).

    ``tickets`` defaults to the classifier the environment configures (the rules offline),
    ``plans`` to the plan settings of the environment (the semantic stage's model).
    """
    from sagaworks.activities.plans.activities import PlanActivities
    from sagaworks.activities.query.activities import QueryActivities

    return [
        *QueryActivities(db, query).llm_activities(),
        (tickets or TicketClassifier.from_env()).classify_ticket,
        *PlanActivities(db, plans).llm_activities(),
    ]
