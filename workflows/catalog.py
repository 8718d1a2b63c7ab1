"""The catalog: every workflow family, declared once.

The worker (which workflows it serves), the ``saga`` CLI (``saga catalog``, ``saga run
FAMILY``), the HTTP API and console, the demo, the replayer and the history recorder all
read :data:`FAMILIES`. Adding a family is its own modules (contracts, activities, workflow)
plus one :class:`Family` entry here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from temporalio.common import WorkflowIDReusePolicy

from contracts.aggregate import AggregateInput
from contracts.documents import BatchInput, DocumentInput, document_id_for, document_workflow_id
from contracts.mcp import McpCallInput
from contracts.orders import OrderInput, order_workflow_id
from contracts.support import TicketInput
from workflows.aggregate import Aggregation
from workflows.document import DocumentPipeline, ExtractChunksWorkflow
from workflows.document_batch import DocumentBatch
from workflows.mcp_call import McpListTools, McpToolCall
from workflows.order import OrderFulfillmentSaga
from workflows.support import SupportTicket

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
"""Where every family's sample inputs live."""

InputT = TypeVar("InputT", bound=BaseModel)


@dataclass(frozen=True)
class DemoRun:
    """A sample that ``make demo`` runs, and how it is expected to end."""

    sample: str
    """Relative to ``samples/``."""
    expect: str = "COMPLETED"
    """COMPLETED, FAILED or CANCELED; RUNNING for a long-lived run the demo leaves open."""
    updates: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Updates (name, argument) the demo sends once the run started, in order: the people
    of a long-lived run (assign and resolve a ticket)."""
    shown_at: str = ""
    """For a RUNNING run: the demo shows it once its status's current step contains this."""


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
    accepts: tuple[str, ...] = ("pause", "resume")
    """The signals and updates a run accepts besides cancellation."""
    helper_workflows: tuple[type, ...] = field(default=())
    """Workflows it starts as children; served by the worker, never started by users."""
    path_field: str | None = None
    """The input field a path argument fills (``saga run document FILE``)."""
    rerun_field: str | None = None
    """A field whose value may run only once (the order id): the demo and the console's
    sample buttons give it a fresh suffix so a sample can run again."""
    demo: tuple[DemoRun, ...] = ()
    """What ``make demo`` runs of this family."""
    folder_family: str | None = None
    """The family a folder given as the path argument starts instead."""

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type name."""
        return self.workflow.__name__

    def parse(self, data: bytes | str | dict[str, Any]) -> InputT:
        """Validate raw input (JSON text or a mapping); raises ``pydantic.ValidationError``."""
        if isinstance(data, dict):
            return self.input_model.model_validate(data)
        return self.input_model.model_validate_json(data)

    def sample_paths(self) -> list[Path]:
        """The sample input files, as absolute paths."""
        return [SAMPLES / sample for sample in self.samples]

    def sample_input(self, sample: str, rerun_suffix: str | None = None) -> InputT:
        """A sample input (relative to ``samples/``), its :attr:`rerun_field` suffixed."""
        data = json.loads((SAMPLES / sample).read_bytes())
        if rerun_suffix and self.rerun_field:
            data[self.rerun_field] = f"{data[self.rerun_field]}-{rerun_suffix}"
        return self.parse(data)

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the input model."""
        return self.input_model.model_json_schema()


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
        demo=(DemoRun("inputs/document-batch.json"),),
    ),
    Family(
        name="mcp-call",
        workflow=McpToolCall,
        input_model=McpCallInput,
        description="One MCP tool call through Temporal (arguments checked against the "
        "tool's schema, timed out and retried); `saga mcp call` starts it.",
        # Every call is its own run; nothing to deduplicate.
        workflow_id=lambda call: f"mcp-{call.server}-{call.tool}-{uuid.uuid4().hex[:12]}",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        conflict_message=lambda call: f"a call of {call.server}.{call.tool} is running",
        samples=("inputs/mcp-call.json",),
        # `saga mcp list` lists the servers' tools through it.
        helper_workflows=(McpListTools,),
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
        accepts=("pause", "resume", "assign", "resolve", "reopen", "comment"),
        rerun_field="ticket_id",
        demo=(
            DemoRun(
                "tickets/ticket-billing.json",
                "RUNNING",
                updates=(("assign", {"agent": "dana"}), ("resolve", {"resolution": "refunded the duplicate charge"})),
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
