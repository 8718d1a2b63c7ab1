"""The two graphs registered as sagaworks families (the entry points of pyproject.toml)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio.common import RetryPolicy

from sagaworks import Escalation
from sagaworks.langgraph import InterruptPolicy, register_graph

from sagaworks_graphs import document as doc
from sagaworks_graphs import routing as rt


class DocumentInput(BaseModel):
    document_id: str
    text: str


class DocumentResult(BaseModel):
    document_id: str
    status: str
    error_message: str = ""
    concepts: list[str] = []
    stored_at: str = ""


class RoutingInput(BaseModel):
    user_input: str


class RoutingResult(BaseModel):
    user_type: str
    processing_path: str
    result: str


document_graph = register_graph(
    "document-graph",
    doc.graph,
    input_model=DocumentInput,
    output_model=DocumentResult,
    nodes={
        "extract": {
            "start_to_close_timeout": timedelta(minutes=2),
            "retry_policy": RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=30)),
        }
    },
    undo={"store": doc.unstore},
    description="A document through validate, parse, chunk, extract and store (LangGraph)",
)

routing_graph = register_graph(
    "routing-graph",
    rt.graph,
    input_model=RoutingInput,
    output_model=RoutingResult,
    interrupt=InterruptPolicy(
        deadline=timedelta(hours=4),
        approvers=("ops",),
        escalations=(Escalation(approvers=("cto",), deadline=timedelta(hours=20)),),
    ),
    description="A request routed by user tier; admin requests wait for approval (LangGraph)",
)


def __getattr__(name: str) -> object:
    # The entry points name these: the Family objects are built when the registry asks.
    graphs = {"document": document_graph, "routing": routing_graph}
    if name in graphs:
        return graphs[name].family
    raise AttributeError(name)
