"""The catalog: every workflow family, declared once.

The worker (which workflows it serves), the ``saga`` CLI (``saga catalog``, ``saga run
FAMILY``), the HTTP API and console, the demo, the replayer and the history recorder all
read :data:`FAMILIES`. Adding a family is its own modules (contracts, activities, workflow)
plus one :class:`Family` entry here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.common import WorkflowIDReusePolicy

from sagaworks import ApprovalDeclaration
from sagaworks.contracts.common import StageResume, text_key
from sagaworks.contracts.aggregate import AggregateInput
from sagaworks.contracts.documents import BatchInput, DocumentInput, DocumentResume, document_id_for, document_workflow_id
from sagaworks.contracts.mcp import McpCallInput
from sagaworks.contracts.orders import OrderInput, order_workflow_id
from sagaworks.contracts.plans import STAGES as PLAN_STAGES
from sagaworks.contracts.plans import PlanInput, ResumePoint, plan_workflow_id
from sagaworks.contracts.query import QueryInput, QueryResume, query_workflow_id
from sagaworks.contracts.support import TicketInput
from sagaworks.workflows.aggregate import Aggregation
from sagaworks.workflows.document import DocumentPipeline, ExtractChunksWorkflow
from sagaworks.workflows.document_batch import DocumentBatch
from sagaworks.workflows.mcp_call import McpListTools, McpToolCall
from sagaworks.workflows.order import OrderFulfillmentSaga
from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput
from sagaworks.contracts.blog import BlogInput, BlogResume
from sagaworks.contracts.iterative import IterativeInput
from sagaworks.contracts.news_digest import NewsDigestInput, NewsDigestResume
from sagaworks.contracts.routing import RoutingInput, routing_workflow_id
from sagaworks.contracts.sequential import SequentialInput
from sagaworks.workflows.parallel_analysis import ParallelAnalysisWorkflow
from sagaworks.workflows.blog import BlogWorkflow
from sagaworks.workflows.iterative import IterativeSearchWorkflow
from sagaworks.workflows.news_digest import NewsDigestWorkflow
from sagaworks.workflows.routing import RoutingWorkflow
from sagaworks.workflows.sequential import SequentialWorkflow
from sagaworks.workflows.plan import PlanAnalysisWorkflow
from sagaworks.workflows.query import QueryWorkflow
from sagaworks.workflows.support import SupportTicket

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
"""Where every family's sample inputs live."""

InputT = TypeVar("InputT", bound=BaseModel)


class RunRefused(Exception):
    """A valid input that this deployment's configuration refuses to start or schedule
    (the message names the setting)."""


@dataclass(frozen=True)
class DemoUpdate:
    """An update the demo sends to a run it started."""

    name: str
    arg: dict[str, Any]
    when_step: str = ""
    """Wait until the run's ``status`` current step mentions this first (empty: at once)."""


@dataclass(frozen=True)
class DemoRun:
    """A sample that ``make demo`` runs, and how it is expected to end."""

    sample: str
    """Relative to ``samples/``."""
    expect: str = "COMPLETED"
    """COMPLETED, FAILED or CANCELED; RUNNING for a long-lived run the demo leaves open."""
    updates: tuple[DemoUpdate, ...] = ()
    """Updates the demo sends, in order (routing's approval; a ticket's assign and resolve)."""
    shown_at: str = ""
    """For a RUNNING run: the demo shows it once its status's current step contains this."""
    stops_agent: str = ""
    """A query agent served by ``saga dev up`` (``viz``) that the demo stops first: it runs
    the sample until the agent's breaker is open and shows that run, which must complete
    with the agent's fallback and name the open breaker; then it serves the agent again and
    a run after the breaker's trial time must close it. Runs after the family's other demos."""


@dataclass(frozen=True)
class Restartable:
    """How a run of the family restarts from a stage (``saga restart ID --from-stage``).

    The new run's input is the source run's with its ``resume`` field set to a
    :attr:`resume` point holding the outcomes of the stages before the chosen one, read
    from the source's history (client/postmortem.py); the workflow takes those over and
    does not execute their stages.
    """

    stages: tuple[str, ...]
    """The stages, in order: each is a point a run may restart from."""
    records: Mapping[str, str | None]
    """Activity type -> the stage whose outcome its last successful result is (None: the
    result's ``stage`` field names it, as one activity serves every stage of a plan)."""
    resume: type[StageResume]
    """The type of the input's ``resume`` field."""
    removed_on_failure: tuple[str, ...] = ()
    """Stages whose stored output a run that did not complete removes (its compensation):
    such a run restarts at the first of them at the latest."""


@dataclass(frozen=True)
class Family(Generic[InputT]):
    """One workflow family of the catalog."""

    name: str
    """What users type: ``saga run NAME``, ``POST /api/workflows/NAME``."""
    workflow: type
    """The workflow class (its ``run`` takes :attr:`input_model`)."""
    input_model: type[InputT]
    description: str
    """One line, shown by ``saga catalog`` and the console."""
    workflow_id: Callable[[InputT], str]
    """The workflow id a run of this input gets; with :attr:`id_reuse_policy` it decides
    whether a second start of the same input is refused."""
    id_reuse_policy: WorkflowIDReusePolicy
    conflict_message: Callable[[InputT], str]
    """What a refused start tells the user (the id already exists under the policy)."""
    samples: tuple[str, ...] = ()
    """Sample inputs, relative to ``samples/``: JSON files of :attr:`input_model`."""
    signals: tuple[str, ...] = ("pause", "resume")
    """The signals a run accepts (the API forwards only these)."""
    updates: tuple[str, ...] = ()
    """The updates a run accepts (approve, reject, assign...; the API forwards only these)."""
    helper_workflows: tuple[type, ...] = field(default=())
    """Workflows it starts as children; served by the worker, never started by users."""
    path_field: str | None = None
    """The input field a path argument fills (``saga run document FILE``)."""
    path_is_folder: bool = False
    """The path argument must be a folder (otherwise a file)."""
    rerun_field: str | None = None
    """A field whose value may run only once (the order id): the demo and the console's
    sample buttons give it a fresh suffix so a sample can run again."""
    demo: tuple[DemoRun, ...] = ()
    """What ``make demo`` runs of this family."""
    folder_family: str | None = None
    """The family a folder given as the path argument starts instead."""
    restartable: Restartable | None = None
    """Set for a family whose runs restart from a stage, reusing the earlier outcomes."""
    refusal: Callable[[InputT], str | None] | None = None
    """Why the deployment's configuration refuses an input (naming the setting), or None;
    clients ask before they start or schedule a run (:meth:`check_allowed`), and the worker
    refuses again what runs started any other way ask for."""
    approval: ApprovalDeclaration | None = None
    """Set for a family whose runs wait for a human decision (:class:`sagaworks.Approval`):
    its ``approve`` and ``reject`` updates are then accepted, and ``saga approve|reject``,
    the API and the console offer them in the declaration's words."""

    def __post_init__(self) -> None:
        if self.approval is not None:
            missing = tuple(u for u in ("approve", "reject") if u not in self.updates)
            object.__setattr__(self, "updates", (*self.updates, *missing))

    @property
    def accepts(self) -> tuple[str, ...]:
        """Every signal and update a run accepts besides cancellation."""
        return (*self.signals, *self.updates)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type name."""
        return self.workflow.__name__

    def parse(self, data: bytes | str | dict[str, Any]) -> InputT:
        """Validate raw input (JSON text or a mapping); raises ``pydantic.ValidationError``."""
        # Always through JSON, as the workflow receives it: strict models accept JSON forms
        # (dates, enums, tuples) from JSON text that they refuse from Python objects.
        text = json.dumps(data) if isinstance(data, dict) else data
        parsed = self.input_model.model_validate_json(text)
        if getattr(parsed, "resume", None) is not None:
            # A resume point hands a run stage outcomes it will not check: only a restart
            # (client/postmortem.py, which reads them from a real run's history) sets one.
            raise ValidationError.from_exception_data(self.input_model.__name__, [{
                "type": "value_error", "loc": ("resume",), "input": "...",
                "ctx": {"error": ValueError("is set by `saga restart ID --from-stage STAGE` only, not by callers")},
            }])
        return parsed

    def check_allowed(self, arg: InputT) -> None:
        """Raise :class:`RunRefused` if the configuration refuses ``arg`` (:attr:`refusal`)."""
        if self.refusal is not None and (why := self.refusal(arg)):
            raise RunRefused(why)

    def sample_paths(self) -> list[Path]:
        """The sample input files, as absolute paths."""
        return [SAMPLES / sample for sample in self.samples]

    def sample_data(self, sample: str, rerun_suffix: str | None = None) -> dict[str, Any]:
        """A sample input as JSON data (relative to ``samples/``), its :attr:`rerun_field`
        suffixed so that it can run again."""
        data: dict[str, Any] = json.loads((SAMPLES / sample).read_bytes())
        if rerun_suffix and self.rerun_field and self.rerun_field in data:
            data[self.rerun_field] = f"{data[self.rerun_field]}-{rerun_suffix}"
        return data

    def sample_input(self, sample: str, rerun_suffix: str | None = None) -> InputT:
        """A sample input, validated (see :meth:`sample_data`)."""
        return self.parse(self.sample_data(sample, rerun_suffix))

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the input model."""
        return self.input_model.model_json_schema()


def _mcp_call_refusal(call: McpCallInput) -> str | None:
    """A tool that may write, unless the MCP configuration allows it for ``mcp-call``."""
    from sagaworks.activities.mcp_servers import load_config  # the MCP SDK loads only here

    return load_config().call_refusal(call.server, call.tool, "mcp-call")


FAMILIES: tuple[Family[Any], ...] = (
    Family(
        name="order",
        workflow=OrderFulfillmentSaga,
        input_model=OrderInput,
        description="Order fulfilment saga: account, payment, notification, stock, label; "
        "compensated in reverse on failure or cancel.",
        workflow_id=lambda order: order_workflow_id(order.order_id),
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        conflict_message=lambda order: f"order {order.order_id} was already submitted "
        f"(see `saga status {order_workflow_id(order.order_id)}`)",
        samples=(
            "orders/order.json",
            "orders/order-fails-at-shipping.json",
            "orders/order-transient-payment.json",
            "orders/order-slow.json",
        ),
        rerun_field="order_id",
        demo=(DemoRun("orders/order.json"), DemoRun("orders/order-fails-at-shipping.json", "FAILED")),
    ),
    Family(
        name="document",
        workflow=DocumentPipeline,
        input_model=DocumentInput,
        description="Document pipeline: validate, parse and chunk, extract concepts with the "
        "LLM provider, store; one run per document at a time.",
        workflow_id=lambda doc: document_workflow_id(document_id_for(doc.path)),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda doc: f"{doc.path} is being processed right now "
        f"(see `saga status {document_workflow_id(document_id_for(doc.path))}`)",
        samples=("inputs/document.json",),
        helper_workflows=(ExtractChunksWorkflow,),
        path_field="path",
        folder_family="document-batch",
        # Chunks and mentions are rows keyed by the document version; validate's outcome
        # (the version) is small and read from the history. Extraction and store run as
        # one stage: extraction is many activities (or child runs), none of them alone
        # its outcome.
        restartable=Restartable(
            stages=("validate", "chunk", "extract"),
            records={"validate_document": "validate", "chunk_document": "chunk"},
            resume=DocumentResume,
            removed_on_failure=("chunk",),
        ),
    ),
    Family(
        name="document-batch",
        workflow=DocumentBatch,
        input_model=BatchInput,
        description="Every document of a folder through the document pipeline, a bounded "
        "number at once; rejects and failures are listed, not fatal.",
        # One batch of a folder at a time; a folder may be processed again once it closed.
        workflow_id=lambda batch: f"batch-{document_id_for(batch.folder)}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda batch: f"a batch of {batch.folder} is running right now "
        f"(see `saga status batch-{document_id_for(batch.folder)}`)",
        samples=("inputs/document-batch.json",),
        path_field="folder",
        path_is_folder=True,
        demo=(DemoRun("inputs/document-batch.json"),),
    ),
    Family(
        name="sequential",
        workflow=SequentialWorkflow,
        input_model=SequentialInput,
        description="Ingest, process, analyse, report: one step after another; the report "
        "lists each step's outcome and timing.",
        # One run of the same text at a time; it may run again once closed.
        workflow_id=lambda request: f"sequential-{text_key(request.text)}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda request: "this text is being processed right now "
        f"(see `saga status sequential-{text_key(request.text)}`)",
        samples=("sequential/billing-retrospective.json", "sequential/too-short.json"),
        demo=(DemoRun("sequential/billing-retrospective.json"), DemoRun("sequential/too-short.json", "FAILED")),
    ),
    Family(
        name="parallel-analysis",
        workflow=ParallelAnalysisWorkflow,
        input_model=ParallelAnalysisInput,
        description="Sentiment, keywords, summary and language of a text at once; a failed "
        "analysis falls back or is listed as not available, the others still count.",
        workflow_id=lambda request: f"parallel-analysis-{text_key(request.text, *request.fail)}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda request: "this text is being analysed right now "
        f"(see `saga status parallel-analysis-{text_key(request.text, *request.fail)}`)",
        samples=("parallel-analysis/billing-retrospective.json", "parallel-analysis/two-failing-branches.json"),
        demo=(DemoRun("parallel-analysis/two-failing-branches.json"),),
    ),
    Family(
        name="routing",
        workflow=RoutingWorkflow,
        input_model=RoutingInput,
        description="Classify a request (admin / premium / standard) and route it to its "
        "handler; admin requests wait for approve/reject, escalating after a deadline.",
        workflow_id=lambda request: routing_workflow_id(request.request_id),
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        conflict_message=lambda request: f"request {request.request_id} was already submitted "
        f"(see `saga status {routing_workflow_id(request.request_id)}`)",
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
            DemoRun("routing/premium-request.json"),
            DemoRun(
                "routing/admin-request.json",
                updates=(DemoUpdate("approve", {"approver": "alice"}, when_step="awaiting approval"),),
            ),
        ),
    ),
    Family(
        name="iterative",
        workflow=IterativeSearchWorkflow,
        input_model=IterativeInput,
        description="BM25 search over the stored documents, refined until its measured "
        "quality reaches the target or the iteration cap; continues as new on long loops.",
        workflow_id=lambda request: f"iterative-{text_key(request.query)}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda request: f"a search for {request.query!r} is running right now "
        f"(see `saga status iterative-{text_key(request.query)}`)",
        samples=("iterative/saga-retries.json", "iterative/research-idempotency.json"),
        demo=(DemoRun("iterative/saga-retries.json"),),
    ),
    Family(
        name="blog",
        workflow=BlogWorkflow,
        input_model=BlogInput,
        description="A cited blog post from the stored documents: research (BM25), outline, "
        "draft, review by the LLM or the offline extractive composer.",
        workflow_id=lambda request: f"blog-{text_key(request.topic)}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda request: f"a post on {request.topic!r} is being written right now "
        f"(see `saga status blog-{text_key(request.topic)}`)",
        samples=("blog/sagas.json", "blog/durable-workflows.json"),
        demo=(DemoRun("blog/sagas.json"),),
        restartable=Restartable(
            stages=("research", "outline", "draft", "review"),
            records={"search_chunks": "research", "outline_post": "outline", "draft_post": "draft", "review_post": "review"},
            resume=BlogResume,
        ),
    ),
    Family(
        name="news-digest",
        workflow=NewsDigestWorkflow,
        input_model=NewsDigestInput,
        description="A newsletter of the configured RSS/Atom feeds: new relevant articles only, "
        "categorised and summarised; run it on a schedule (saga schedule create).",
        # One digest of a name at a time (a schedule skips overlapping runs as well).
        workflow_id=lambda request: f"news-digest-{request.name}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda request: f"the {request.name} digest is being built right now "
        f"(see `saga status news-digest-{request.name}`)",
        samples=("news-digest/weekly.json", "news-digest/workflows-only.json"),
        demo=(DemoRun("news-digest/weekly.json"),),
        # Fetching the feeds is part of select: one activity per feed, and the articles
        # are only the selection's input.
        restartable=Restartable(
            stages=("select", "summarise", "newsletter", "store"),
            records={
                "select_articles": "select", "categorise_and_summarise": "summarise",
                "build_newsletter": "newsletter", "store_digest": "store",
            },
            resume=NewsDigestResume,
        ),
    ),
    Family(
        name="query",
        workflow=QueryWorkflow,
        input_model=QueryInput,
        description="A question about the sample data: NLP agent -> plan, data agent -> "
        "guarded SQL and rows, viz agent -> chart (table fallback); shared circuit breakers.",
        # One run of a request (its id, or the question itself) at a time; a question may
        # be asked again once its run closed.
        workflow_id=lambda q: query_workflow_id(q.request_id or text_key(q.question)),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda q: "this question is being answered right now "
        f"(see `saga status {query_workflow_id(q.request_id or text_key(q.question))}`)",
        samples=(
            "queries/temperature-by-month.json",
            "queries/top-cars-by-horsepower.json",
            "queries/average-price-by-symbol.json",
            "queries/average-mpg-by-origin.json",
        ),
        rerun_field="request_id",
        demo=(
            DemoRun("queries/temperature-by-month.json"),
            DemoRun("queries/average-mpg-by-origin.json", stops_agent="viz"),
        ),
        # The health check runs again in every run: it is about now, not an outcome.
        restartable=Restartable(
            stages=("nlp", "data", "viz"),
            records={"query_plan": "nlp", "query_plan_offline": "nlp", "query_run": "data", "query_render": "viz"},
            resume=QueryResume,
        ),
    ),
    Family(
        name="plan-analysis",
        workflow=PlanAnalysisWorkflow,
        input_model=PlanInput,
        description="Risk-aware analysis of a development plan (PDF): nine stages with risk "
        "assessments, mitigations, per-stage breakers and alerts; a report in Markdown, HTML, JSON.",
        workflow_id=lambda plan: plan_workflow_id(plan.plan_id),
        # One run of a plan id at a time; `saga restart` starts a new run of the same id.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda plan: f"plan {plan.plan_id} is being analysed right now "
        f"(see `saga status {plan_workflow_id(plan.plan_id)}`)",
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
            DemoRun("plans/plan-bueno.json"),
            DemoRun("plans/plan-presupuesto-roto.json"),
            DemoRun("plans/plan-breve.json"),
            DemoRun("plans/plan-corrupto.json", "FAILED"),
        ),
        # Every stage stores its output by content hash (plan_stage_outputs).
        restartable=Restartable(stages=PLAN_STAGES, records={"run_plan_stage": None}, resume=ResumePoint),
    ),
    Family(
        name="mcp-call",
        workflow=McpToolCall,
        input_model=McpCallInput,
        description="One MCP tool call through Temporal (arguments checked against the "
        "tool's schema, timed out and retried); `saga mcp call` starts it.",
        # One run of the same call (tool and arguments) at a time; it may run again after.
        workflow_id=lambda call: f"mcp-{call.server}-{call.tool}-{text_key(call.model_dump_json())}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda call: f"the same call of {call.server}.{call.tool} is running right now",
        samples=("inputs/mcp-call.json",),
        # `saga mcp list` lists the servers' tools through it.
        helper_workflows=(McpListTools,),
        refusal=_mcp_call_refusal,
    ),
    Family(
        name="aggregate",
        workflow=Aggregation,
        input_model=AggregateInput,
        description="A question answered from weather, files and the database through MCP "
        "in parallel; each source within its budget, partial results kept, irrelevant ones skipped.",
        workflow_id=lambda request: f"aggregate-{request.request_id}",
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        conflict_message=lambda request: f"aggregation {request.request_id} was already run "
        f"(see `saga status aggregate-{request.request_id}`)",
        samples=("inputs/aggregate.json",),
        rerun_field="request_id",
        demo=(DemoRun("inputs/aggregate.json"),),
    ),
    Family(
        name="support-ticket",
        workflow=SupportTicket,
        input_model=TicketInput,
        description="A support ticket: classified and routed, looked into through MCP, "
        "assigned and resolved by Updates, escalated by trigger words or a missed SLA.",
        workflow_id=lambda ticket: f"ticket-{ticket.ticket_id}",
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        conflict_message=lambda ticket: f"ticket {ticket.ticket_id} already exists "
        f"(see `saga status ticket-{ticket.ticket_id}`)",
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
    ),
)


def family(name: str) -> Family[Any]:
    """The family called ``name``; raises ``KeyError`` listing the known names."""
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no family {name!r}; the catalog has: {', '.join(f.name for f in FAMILIES)}")


def family_of_type(workflow_type: str) -> Family[Any] | None:
    """The family whose workflow type is ``workflow_type`` (None for helper workflows)."""
    return next((f for f in FAMILIES if f.workflow_type == workflow_type), None)


WORKFLOWS: list[type] = [
    workflow for f in FAMILIES for workflow in (f.workflow, *f.helper_workflows)
]
"""Every workflow class the worker serves and the replayer knows."""
