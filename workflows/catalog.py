"""The built-in families, declared with the public :class:`sagaworks.Family`.

Each is registered under the ``sagaworks.families`` entry-point group in pyproject.toml,
as any other project registers its own; the worker, the ``saga`` CLI, the API and the
console find them through :func:`sagaworks.registry`. Workflows, input models and
activities are named by ``"module:attr"`` and imported when first used, so listing the
catalog imports no family's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sagaworks import ApprovalDeclaration, DemoRun, DemoUpdate, Family, lazy

if TYPE_CHECKING:
    from sagaworks.contracts.aggregate import AggregateInput
    from sagaworks.contracts.blog import BlogInput
    from sagaworks.contracts.document import BatchInput, DocumentInput
    from sagaworks.contracts.iterative import IterativeInput
    from sagaworks.contracts.mcp import McpCallInput
    from sagaworks.contracts.news_digest import NewsDigestInput
    from sagaworks.contracts.orders import OrderInput
    from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput
    from sagaworks.contracts.plans import PlanInput
    from sagaworks.contracts.query import QueryInput
    from sagaworks.contracts.routing import RoutingInput
    from sagaworks.contracts.sequential import SequentialInput
    from sagaworks.contracts.support import TicketInput

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
"""Where every built-in family's sample inputs live."""

_WF = "sagaworks.workflows"
_CT = "sagaworks.contracts"
_ACT = "sagaworks.activities.catalog"
_MCP = "sagaworks.activities.mcp_servers:mcp_plugins"

text_key = lazy(f"{_CT}.common:text_key")
order_workflow_id = lazy(f"{_CT}.orders:order_workflow_id")
document_id_for = lazy(f"{_CT}.document:document_id_for")
document_workflow_id = lazy(f"{_CT}.document:document_workflow_id")
routing_workflow_id = lazy(f"{_CT}.routing:routing_workflow_id")
query_workflow_id = lazy(f"{_CT}.query:query_workflow_id")
plan_workflow_id = lazy(f"{_CT}.plans:plan_workflow_id")

ORDER: Family[OrderInput] = Family(
    "order",
    workflow=f"{_WF}.order:OrderFulfillmentSaga",
    input_model=f"{_CT}.orders:OrderInput",
    description="Order fulfilment saga: account, payment, notification, stock, label; "
    "compensated in reverse on failure or cancel.",
    workflow_id=lambda order: order_workflow_id(order.order_id),
    id_reuse_policy="REJECT_DUPLICATE",
    conflict_message=lambda order: (
        f"order {order.order_id} was already submitted (see `saga status {order_workflow_id(order.order_id)}`)"
    ),
    samples=(
        "orders/order.json",
        "orders/order-fails-at-shipping.json",
        "orders/order-transient-payment.json",
        "orders/order-slow.json",
    ),
    rerun_field="order_id",
    demo=(
        DemoRun("orders/order.json", result_has=("references",), result_means="a reference from every step"),
        DemoRun("orders/order-fails-at-shipping.json", "FAILED"),
    ),
    activities=f"{_ACT}:order",
    samples_dir=SAMPLES,
)

DOCUMENT: Family[DocumentInput] = Family(
    "document",
    workflow=f"{_WF}.document:DocumentPipeline",
    input_model=f"{_CT}.document:DocumentInput",
    description="Document pipeline: validate, parse and chunk, extract concepts with the "
    "LLM provider, store; one run per document at a time.",
    workflow_id=lambda doc: document_workflow_id(document_id_for(doc.path)),
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda doc: (
        f"{doc.path} is being processed right now (see `saga status {document_workflow_id(document_id_for(doc.path))}`)"
    ),
    samples=("inputs/document.json",),
    # A second run of the same file reuses the stored concepts (`reused`), so the demo
    # passes in a machine that ran it before as in a fresh one.
    demo=(
        DemoRun("inputs/document.json", result_has=("concept_count", "top_concepts"), result_means="concepts stored"),
    ),
    helper_workflows=(f"{_WF}.document:ExtractChunksWorkflow",),
    path_field="path",
    folder_family="document-batch",
    # Concepts are asked of the model through the gateway, the offline extractor its fallback.
    llm_steps=("extract_concepts",),
    activities=f"{_ACT}:document",
    extra="documents",
    requires=("pypdfium2", "docx", "lxml", "filetype", "yake", "langchain_text_splitters"),
    samples_dir=SAMPLES,
)

DOCUMENT_BATCH: Family[BatchInput] = Family(
    "document-batch",
    workflow=f"{_WF}.document_batch:DocumentBatch",
    input_model=f"{_CT}.document:BatchInput",
    description="Every document of a folder through the document pipeline, a bounded "
    "number at once; rejects and failures are listed, not fatal.",
    # One batch of a folder at a time; a folder may be processed again once it closed.
    workflow_id=lambda batch: f"batch-{document_id_for(batch.folder)}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda batch: (
        f"a batch of {batch.folder} is running right now (see `saga status batch-{document_id_for(batch.folder)}`)"
    ),
    samples=("inputs/document-batch.json",),
    path_field="folder",
    path_is_folder=True,
    demo=(DemoRun("inputs/document-batch.json", result_has=("completed",), result_means="documents stored"),),
    # It runs each document through the document pipeline, as children on the same queue.
    activities=f"{_ACT}:document",
    helper_workflows=(f"{_WF}.document:DocumentPipeline", f"{_WF}.document:ExtractChunksWorkflow"),
    extra="documents",
    requires=("pypdfium2", "docx", "lxml", "filetype", "yake", "langchain_text_splitters"),
    samples_dir=SAMPLES,
)

SEQUENTIAL: Family[SequentialInput] = Family(
    "sequential",
    workflow=f"{_WF}.sequential:SequentialWorkflow",
    input_model=f"{_CT}.sequential:SequentialInput",
    description="Ingest, process, analyse, report: one step after another; the report "
    "lists each step's outcome and timing.",
    # One run of the same text at a time; it may run again once closed.
    workflow_id=lambda request: f"sequential-{text_key(request.text)}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda request: (
        f"this text is being processed right now (see `saga status sequential-{text_key(request.text)}`)"
    ),
    samples=("sequential/billing-retrospective.json", "sequential/too-short.json"),
    demo=(
        DemoRun(
            "sequential/billing-retrospective.json",
            result_has=("report", "steps"),
            result_means="a report of every step",
        ),
        DemoRun("sequential/too-short.json", "FAILED"),
    ),
    cpu_activities=f"{_ACT}:sequential_cpu",
    samples_dir=SAMPLES,
)

PARALLEL_ANALYSIS: Family[ParallelAnalysisInput] = Family(
    "parallel-analysis",
    workflow=f"{_WF}.parallel_analysis:ParallelAnalysisWorkflow",
    input_model=f"{_CT}.parallel_analysis:ParallelAnalysisInput",
    description="Sentiment, keywords, summary and language of a text at once; a failed "
    "analysis falls back or is listed as not available, the others still count.",
    workflow_id=lambda request: f"parallel-analysis-{text_key(request.text, *request.fail)}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda request: (
        "this text is being analysed right now "
        f"(see `saga status parallel-analysis-{text_key(request.text, *request.fail)}`)"
    ),
    samples=("parallel-analysis/billing-retrospective.json", "parallel-analysis/two-failing-branches.json"),
    demo=(
        DemoRun(
            "parallel-analysis/two-failing-branches.json",
            result_has=("keywords", "language"),
            result_means="the analyses that did not fail",
        ),
    ),
    activities=f"{_ACT}:parallel_analysis",
    cpu_activities=f"{_ACT}:parallel_analysis_cpu",
    # One activity asks the model for every part; a part it does not answer runs offline.
    llm_steps=("ask_model_analyses",),
    samples_dir=SAMPLES,
)

ROUTING: Family[RoutingInput] = Family(
    "routing",
    workflow=f"{_WF}.routing:RoutingWorkflow",
    input_model=f"{_CT}.routing:RoutingInput",
    description="Classify a request (admin / premium / standard) and route it to its "
    "handler; admin requests wait for approve/reject, escalating after a deadline.",
    workflow_id=lambda request: routing_workflow_id(request.request_id),
    id_reuse_policy="REJECT_DUPLICATE",
    conflict_message=lambda request: (
        f"request {request.request_id} was already submitted "
        f"(see `saga status {routing_workflow_id(request.request_id)}`)"
    ),
    samples=(
        "routing/admin-request.json",
        "routing/premium-request.json",
        "routing/standard-request.json",
    ),
    approval=ApprovalDeclaration(
        subject="this admin request",
        deadline="24 h unless the request says otherwise",
        escalation="it is rejected, or asked of the second group the request names",
    ),
    rerun_field="request_id",
    demo=(
        DemoRun("routing/premium-request.json", result_has=("handled",), result_means="the request handled"),
        DemoRun(
            "routing/admin-request.json",
            updates=(DemoUpdate("approve", {"approver": "alice"}, when_step="awaiting approval"),),
            result_has=("handled", "decided_by"),
            result_means="the approved request handled",
        ),
    ),
    activities=f"{_ACT}:routing",
    samples_dir=SAMPLES,
    # Classified by the model where the worker has one, the input's rules as its fallback.
    llm_steps=("classify",),
)

ITERATIVE: Family[IterativeInput] = Family(
    "iterative",
    workflow=f"{_WF}.iterative:IterativeSearchWorkflow",
    input_model=f"{_CT}.iterative:IterativeInput",
    description="BM25 search over the stored documents, refined until its measured "
    "quality reaches the target or the iteration cap; continues as new on long loops.",
    workflow_id=lambda request: f"iterative-{text_key(request.query)}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda request: (
        f"a search for {request.query!r} is running right now (see `saga status iterative-{text_key(request.query)}`)"
    ),
    samples=("iterative/saga-retries.json", "iterative/research-idempotency.json"),
    demo=(DemoRun("iterative/saga-retries.json", result_has=("best.hits",), result_means="documents found"),),
    activities=f"{_ACT}:iterative",
    # It searches the documents the batch demo stores.
    demo_after=("document-batch",),
    samples_dir=SAMPLES,
)

BLOG: Family[BlogInput] = Family(
    "blog",
    workflow=f"{_WF}.blog:BlogWorkflow",
    input_model=f"{_CT}.blog:BlogInput",
    description="A cited blog post from the stored documents: research (BM25), outline, "
    "draft, review by the LLM or the offline extractive composer.",
    workflow_id=lambda request: f"blog-{text_key(request.topic)}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda request: (
        f"a post on {request.topic!r} is being written right now (see `saga status blog-{text_key(request.topic)}`)"
    ),
    samples=("blog/sagas.json", "blog/durable-workflows.json"),
    demo=(DemoRun("blog/sagas.json", result_has=("markdown", "citations"), result_means="a cited post"),),
    # On the step runner: `saga restart ID --from STEP` reuses the steps before STEP.
    activities=f"{_ACT}:blog",
    # Each writes through the gateway, the extractive composer as its fallback; a step that
    # fell back says why (its result's fallback), and the post lists them (fallbacks).
    llm_steps=("outline", "draft", "review"),
    # It searches the documents the batch demo stores.
    demo_after=("document-batch",),
    samples_dir=SAMPLES,
)

NEWS_DIGEST: Family[NewsDigestInput] = Family(
    "news-digest",
    workflow=f"{_WF}.news_digest:NewsDigestWorkflow",
    input_model=f"{_CT}.news_digest:NewsDigestInput",
    description="A newsletter of the configured RSS/Atom feeds: new relevant articles only, "
    "categorised and summarised; run it on a schedule (saga schedule create).",
    # One digest of a name at a time (a schedule skips overlapping runs as well).
    workflow_id=lambda request: f"news-digest-{request.name}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda request: (
        f"the {request.name} digest is being built right now (see `saga status news-digest-{request.name}`)"
    ),
    samples=("news-digest/weekly.json", "news-digest/workflows-only.json"),
    demo=(
        # A second run finds nothing new, and stores nothing: what must hold is that a
        # feed was read.
        DemoRun(
            "news-digest/weekly.json",
            result_has=("feeds",),
            result_check=lambda result: any(feed["status"] != "unavailable" for feed in result["feeds"].values()),
            result_means="articles read from at least one feed",
        ),
    ),
    # On the step runner: `saga restart ID --from STEP` reuses the steps before STEP.
    activities=f"{_ACT}:news_digest",
    # Categories and summaries are asked of the model through the gateway wherever the
    # worker has one (categoriser "offline" keeps the lexicon), the lexicon and the
    # extractive summary their fallbacks.
    llm_steps=("categorise_and_summarise",),
    extra="news",
    requires=("defusedxml", "bs4", "httpx"),
    samples_dir=SAMPLES,
)

QUERY: Family[QueryInput] = Family(
    "query",
    workflow=f"{_WF}.query:QueryWorkflow",
    input_model=f"{_CT}.query:QueryInput",
    description="A question about the sample data: NLP agent -> plan, data agent -> "
    "guarded SQL and rows, viz agent -> chart (table fallback); shared circuit breakers.",
    # One run of a request (its id, or the question itself) at a time; a question may
    # be asked again once its run closed.
    workflow_id=lambda q: query_workflow_id(q.request_id or text_key(q.question)),
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda q: (
        "this question is being answered right now "
        f"(see `saga status {query_workflow_id(q.request_id or text_key(q.question))}`)"
    ),
    samples=(
        "queries/temperature-by-month.json",
        "queries/top-cars-by-horsepower.json",
        "queries/average-price-by-symbol.json",
        "queries/average-mpg-by-origin.json",
    ),
    rerun_field="request_id",
    demo=(
        DemoRun(
            "queries/temperature-by-month.json", result_has=("rows", "chart"), result_means="rows returned and a chart"
        ),
        DemoRun(
            "queries/average-mpg-by-origin.json", stops_agent="viz", result_has=("rows",), result_means="rows returned"
        ),
    ),
    activities=f"{_ACT}:query",
    llm_activities=f"{_ACT}:query_llm",
    # The NLP agent plans with the model through the gateway, the offline parser its fallback.
    llm_steps=("nlp",),
    extra="query",
    requires=("sqlglot", "altair", "vl_convert", "vega_datasets", "httpx"),
    samples_dir=SAMPLES,
)

PLAN_ANALYSIS: Family[PlanInput] = Family(
    "plan-analysis",
    workflow=f"{_WF}.plan_analysis:PlanAnalysisWorkflow",
    input_model=f"{_CT}.plans:PlanInput",
    description="Risk-aware analysis of a development plan (PDF): nine stages with risk "
    "assessments, mitigations, per-stage breakers and alerts; a report in Markdown, HTML, JSON.",
    workflow_id=lambda plan: plan_workflow_id(plan.plan_id),
    # One run of a plan id at a time; `saga restart` starts a new run of the same id.
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda plan: (
        f"plan {plan.plan_id} is being analysed right now (see `saga status {plan_workflow_id(plan.plan_id)}`)"
    ),
    samples=(
        "plans/plan-bueno.json",
        "plans/plan-presupuesto-roto.json",
        "plans/plan-escaneado.json",
        "plans/plan-breve.json",
        "plans/plan-corrupto.json",
    ),
    path_field="path",
    rerun_field="plan_id",
    demo=(
        DemoRun("plans/plan-bueno.json", result_has=("stages", "report"), result_means="a report of every stage"),
        DemoRun(
            "plans/plan-presupuesto-roto.json", result_has=("stages", "report"), result_means="a report of every stage"
        ),
        DemoRun("plans/plan-breve.json", result_has=("stages", "report"), result_means="a report of every stage"),
        DemoRun("plans/plan-corrupto.json", "FAILED"),
    ),
    # The semantic stage's LLM pass: the same step again, on the LLM task queue.
    llm_steps=("semantic",),
    activities=f"{_ACT}:plan_analysis",
    llm_activities=f"{_ACT}:plan_analysis_llm",
    extra="plans",
    requires=("pypdf", "pdfplumber", "pytesseract", "networkx", "yaml"),
    samples_dir=SAMPLES,
)

MCP_CALL: Family[McpCallInput] = Family(
    "mcp-call",
    workflow=f"{_WF}.mcp_call:McpToolCall",
    input_model=f"{_CT}.mcp:McpCallInput",
    description="One MCP tool call through Temporal (arguments checked against the "
    "tool's schema, timed out and retried); `saga mcp call` starts it.",
    # One run of the same call (tool and arguments) at a time; it may run again after.
    workflow_id=lambda call: f"mcp-{call.server}-{call.tool}-{text_key(call.model_dump_json())}",
    id_reuse_policy="ALLOW_DUPLICATE",
    conflict_message=lambda call: f"the same call of {call.server}.{call.tool} is running right now",
    samples=("inputs/mcp-call.json",),
    # `saga mcp list` lists the servers' tools through it.
    helper_workflows=(f"{_WF}.mcp_call:McpListTools",),
    refusal=lazy(f"{_ACT}:mcp_call_refusal"),
    plugins=(_MCP,),
    extra="mcp",
    requires=("mcp",),
    samples_dir=SAMPLES,
)

AGGREGATE: Family[AggregateInput] = Family(
    "aggregate",
    workflow=f"{_WF}.aggregate:Aggregation",
    input_model=f"{_CT}.aggregate:AggregateInput",
    description="A question answered from weather, files and the database through MCP "
    "in parallel; each source within its budget, partial results kept, irrelevant ones skipped.",
    workflow_id=lambda request: f"aggregate-{request.request_id}",
    id_reuse_policy="REJECT_DUPLICATE",
    conflict_message=lambda request: (
        f"aggregation {request.request_id} was already run (see `saga status aggregate-{request.request_id}`)"
    ),
    samples=("inputs/aggregate.json",),
    rerun_field="request_id",
    demo=(
        DemoRun("inputs/aggregate.json", result_has=("completed", "summary"), result_means="answers from the sources"),
    ),
    plugins=(_MCP,),
    extra="mcp",
    requires=("mcp",),
    samples_dir=SAMPLES,
)

SUPPORT_TICKET: Family[TicketInput] = Family(
    "support-ticket",
    workflow=f"{_WF}.support_ticket:SupportTicket",
    input_model=f"{_CT}.support:TicketInput",
    description="A support ticket: classified and routed, looked into through MCP, "
    "assigned and resolved by Updates, escalated by trigger words or a missed SLA.",
    workflow_id=lambda ticket: f"ticket-{ticket.ticket_id}",
    id_reuse_policy="REJECT_DUPLICATE",
    conflict_message=lambda ticket: (
        f"ticket {ticket.ticket_id} already exists (see `saga status ticket-{ticket.ticket_id}`)"
    ),
    samples=("tickets/ticket-billing.json", "tickets/ticket-angry-outage.json"),
    signals=("pause", "resume", "comment"),
    updates=("assign", "resolve", "reopen"),
    rerun_field="ticket_id",
    demo=(
        DemoRun(
            "tickets/ticket-billing.json",
            "RUNNING",
            updates=(
                DemoUpdate("assign", {"agent": "dana"}, when_step="open"),  # once classified
                DemoUpdate("resolve", {"resolution": "refunded the duplicate charge"}),
            ),
            shown_at="resolved",
        ),
        DemoRun("tickets/ticket-angry-outage.json", "RUNNING", shown_at="escalated"),
    ),
    activities=f"{_ACT}:support_ticket",
    llm_activities=f"{_ACT}:support_ticket_llm",
    # Classified by the model through the gateway, the keyword rules its fallback.
    llm_steps=("classify_ticket",),
    plugins=(_MCP,),
    extra="mcp",
    requires=("mcp",),
    samples_dir=SAMPLES,
)
