"""The built-in families' activities, each family's built from the worker's resources.

Each function is one family's ``activities`` (or ``llm_activities``, ``cpu_activities``)
in workflows/catalog.py and imports that family's modules itself: a family whose
optional dependencies are missing never stops another's from being served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagaworks import WorkerResources

Activities = list[Callable[..., Any]]


def order(resources: WorkerResources) -> Activities:
    """The order saga's steps and their compensations; seeds the sample inventory."""
    from sagaworks.activities.orders import OrderActivities, seed_inventory

    seed_inventory(resources.db)
    orders = OrderActivities(resources.db)
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
    ]


def document(resources: WorkerResources) -> Activities:
    """The document pipeline's (and a batch's listing); the CPU-bound parts of parsing,
    splitting and the offline extractor's YAKE run in the worker's process pool."""
    from sagaworks import LLM
    from sagaworks.activities.document import DocumentActivities, DocumentSettings
    from sagaworks.activities.llm import OfflineProvider

    # The model through the worker's gateway (settings=[LLM(...)]) or the environment's;
    # the settings' extractor (DocumentSettings(extractor=...)) or the offline one is its
    # fallback.
    settings = resources.setting(DocumentSettings) or DocumentSettings()
    extractor = settings.extractor or OfflineProvider(cpu_pool=resources.cpu_pool)
    docs = DocumentActivities(resources.db, extractor, settings, resources.cpu_pool, resources.setting(LLM))
    return [
        docs.resolve_document,
        docs.validate_document,
        docs.chunk_document,
        docs.extract_concepts,
        docs.store_concepts,
        docs.document_result,
        docs.finalise_document,
        docs.list_documents,
        docs.store_listing,
        docs.listing_page,
    ]


def sequential_cpu() -> Activities:
    from sagaworks.activities import sequential

    return [sequential.ingest_text, sequential.process_text, sequential.analyse_text, sequential.render_report]


def parallel_analysis_cpu() -> Activities:
    from sagaworks.activities import parallel_analysis

    return [
        parallel_analysis.analyse_sentiment,
        parallel_analysis.extract_keywords,
        parallel_analysis.frequent_keywords,
        parallel_analysis.summarise_text,
        parallel_analysis.lead_summary,
        parallel_analysis.detect_language,
    ]


def parallel_analysis(resources: WorkerResources) -> Activities:
    """The analyses by the family's model (each part's offline analysis its fallback)."""
    from sagaworks import LLM
    from sagaworks.activities.parallel_analysis_llm import ModelAnalysisActivities

    # The worker's gateway when it was given one (settings=[LLM(...)]), else the environment's.
    model = ModelAnalysisActivities(resources.setting(LLM) or LLM(resources.db))
    return [model.ask_model_analyses, model.llm_sentiment, model.llm_keywords, model.llm_summary]


def routing(resources: WorkerResources) -> Activities:
    """The handlers, and the classifier on the worker's LLM gateway (else the environment's)."""
    from sagaworks import LLM
    from sagaworks.activities.routing import RoutingActivities

    handlers = RoutingActivities(resources.db, resources.setting(LLM) or LLM(resources.db))
    return [
        handlers.classify_request,
        handlers.handle_admin,
        handlers.handle_premium,
        handlers.handle_standard,
        handlers.record_rejection,
    ]


def iterative(resources: WorkerResources) -> Activities:
    from sagaworks.activities.search import SearchActivities

    search = SearchActivities(resources.db)
    return [search.search_chunks, search.evaluate_hits, search.refine_query]


def blog(resources: WorkerResources) -> Activities:
    from sagaworks import LLM
    from sagaworks.activities.search import SearchActivities
    from sagaworks.activities.writing import WritingActivities

    # The worker's gateway when it was given one (settings=[LLM(...)]), else the environment's.
    writing = WritingActivities(resources.setting(LLM) or LLM(resources.db))
    return [SearchActivities(resources.db).search_chunks, writing.outline_post, writing.draft_post, writing.review_post]


def news_digest(resources: WorkerResources) -> Activities:
    from sagaworks import LLM
    from sagaworks.activities.document import DocumentSettings
    from sagaworks.activities.news import FeedSettings, NewsActivities

    # The worker's gateway when it was given one (settings=[LLM(...)]), else the environment's.
    news = NewsActivities(
        resources.db, resources.setting(DocumentSettings), resources.setting(LLM), resources.setting(FeedSettings)
    )
    return [
        news.fetch_feed,
        news.cached_feed,
        news.select_articles,
        news.categorise_and_summarise,
        news.build_newsletter,
        news.store_digest,
    ]


def query(resources: WorkerResources) -> Activities:
    """The agents' calls; the plan too, for the offline parser."""
    from sagaworks import LLM
    from sagaworks.activities.processes import RENDER_MODULES, import_now
    from sagaworks.activities.query.activities import QueryActivities, QuerySettings

    # Before any activity thread runs: a render must never see pandas half-imported by another.
    import_now(RENDER_MODULES)
    return QueryActivities(resources.db, resources.setting(QuerySettings), resources.setting(LLM)).activities()


def query_llm(resources: WorkerResources) -> Activities:
    from sagaworks import LLM
    from sagaworks.activities.query.activities import QueryActivities, QuerySettings

    return QueryActivities(resources.db, resources.setting(QuerySettings), resources.setting(LLM)).llm_activities()


def plan_analysis(resources: WorkerResources) -> Activities:
    from sagaworks import LLM
    from sagaworks.activities.plan_analysis.activities import PlanActivities, PlanSettings

    # The worker's gateway when it was given one (settings=[LLM(...)]), else the environment's.
    return PlanActivities(resources.db, resources.setting(PlanSettings), resources.setting(LLM)).activities()


def plan_analysis_llm(resources: WorkerResources) -> Activities:
    """Stages run with ``options.llm`` (the semantic pass)."""
    from sagaworks import LLM
    from sagaworks.activities.plan_analysis.activities import PlanActivities, PlanSettings

    return PlanActivities(resources.db, resources.setting(PlanSettings), resources.setting(LLM)).llm_activities()


def support_ticket(resources: WorkerResources) -> Activities:
    from sagaworks.activities.support_ticket import notify_escalation

    return [notify_escalation]


def support_ticket_llm(resources: WorkerResources) -> Activities:
    """The classifier on the worker's LLM gateway (else the environment's; the rules offline)."""
    from sagaworks import LLM
    from sagaworks.activities.support_ticket import TicketClassifier

    return [TicketClassifier(resources.setting(LLM) or LLM(resources.db)).classify_ticket]


def mcp_call_refusal(call: Any) -> str | None:
    """Why ``mcp-call`` may not run ``call``: a tool that may write, unless the MCP
    configuration allows it for the family."""
    from sagaworks.activities.mcp_servers import load_config  # the MCP SDK loads only here

    return load_config().call_refusal(call.server, call.tool, "mcp-call")
