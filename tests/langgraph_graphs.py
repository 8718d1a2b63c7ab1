"""Graphs the LangGraph bridge's tests run, and a worker serving them (``python -m
tests.langgraph_graphs ADDRESS TASK_QUEUE``, killed by the crash test)."""

from __future__ import annotations

import asyncio
import itertools
import operator
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "langgraph"))

from sagaworks.langgraph import GraphFamily, NodePolicy, register_graph  # noqa: E402
from sagaworks.policies import ActivityOptions  # noqa: E402

from sagaworks_graphs.families import document_graph, routing_graph  # noqa: E402


class OrderState(TypedDict, total=False):
    journal: str
    gate: str
    fail_at: str
    fail_after: str
    steps: list[str]
    decision: str


class OrderInput(BaseModel):
    journal: str
    gate: str = ""
    fail_at: str = ""
    fail_after: str = ""


def _write(state: OrderState, line: str) -> None:
    with open(state["journal"], "a") as f:
        f.write(line + "\n")


def _step(name: str):  # noqa: ANN202
    def node(state: OrderState) -> dict[str, Any]:
        if state.get("fail_at") == name:
            raise ApplicationError(f"{name} refused", type="InvalidInput", non_retryable=True)
        if name == "pack" and state.get("gate"):
            # Held here until the test creates the gate file (the crash test kills the worker meanwhile).
            while not Path(state["gate"]).exists():
                time.sleep(0.05)
        _write(state, name)
        if state.get("fail_after") == name:  # took effect, then failed (its reply lost, say)
            raise ApplicationError(f"{name} failed after writing", type="InvalidInput", non_retryable=True)
        return {"steps": [*state.get("steps", []), name]}

    node.__name__ = name
    return node


def _undo(name: str):  # noqa: ANN202
    def undo(state: OrderState) -> None:
        _write(state, f"undo {name}")

    return undo


def confirm(state: OrderState) -> dict[str, Any]:
    answer = interrupt({"confirm": state.get("steps", [])})
    return {"decision": "yes" if answer["approved"] else "no"}


def order_builder(with_confirm: bool = False) -> StateGraph:
    names = ["reserve", "charge", "pack", "ship", "notify"]
    graph = StateGraph(OrderState)
    for name in names:
        graph.add_node(name, _step(name))
    chain = [START, *names[:2], *(["confirm"] if with_confirm else []), *names[2:], END]
    if with_confirm:
        graph.add_node("confirm", confirm)
    for a, b in itertools.pairwise(chain):
        graph.add_edge(a, b)
    return graph


UNDO = {n: _undo(n) for n in ("reserve", "charge", "pack")}
# A short start-to-close: an attempt lost with a killed worker is retried within seconds.
QUICK: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=3),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5),
}
order_graph = register_graph("order-graph", order_builder(), input_model=OrderInput, undo=UNDO, default_options=QUICK)
confirmed_order_graph = register_graph(
    "confirmed-order-graph", order_builder(True), input_model=OrderInput, undo=UNDO, default_options=QUICK
)


class FanState(TypedDict, total=False):
    words: list[str]
    word: str
    lengths: Annotated[list[int], operator.add]
    total: int


class FanInput(BaseModel):
    words: list[str]


def fan_out(state: FanState) -> list[Send]:
    return [Send("measure", {"word": w}) for w in state["words"]]


def fan_builder() -> StateGraph:
    graph = StateGraph(FanState)
    graph.add_node("start", lambda state: {"lengths": []})
    graph.add_node("measure", lambda state: {"lengths": [len(state["word"])]})
    graph.add_node("sum_up", lambda state: {"total": sum(state["lengths"])})
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", fan_out, ["measure"])
    graph.add_edge("measure", "sum_up")
    graph.add_edge("sum_up", END)
    return graph


fan_graph = register_graph("fan-graph", fan_builder(), input_model=FanInput)


class BookState(TypedDict, total=False):
    journal: str
    items: list[str]
    item: str
    booked: Annotated[list[str], operator.add]


class BookInput(BaseModel):
    journal: str
    items: list[str]


def book(state: BookState) -> dict[str, Any]:
    if state["item"] == "bad":
        raise ApplicationError("bad item", type="InvalidInput", non_retryable=True)
    time.sleep(0.5)  # finishes after its failing sibling
    _write(state, f"book {state['item']}")  # type: ignore[arg-type]  # LangGraph hands the node a plain dict of the state
    return {"booked": [state["item"]]}


def unbook(state: BookState) -> None:
    _write(state, f"undo {state['item']}")  # type: ignore[arg-type]  # LangGraph hands the node a plain dict of the state


def book_builder() -> StateGraph:
    graph = StateGraph(BookState)
    graph.add_node("plan", lambda state: {"booked": []})
    graph.add_node("book", book)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges(
        "plan", lambda state: [Send("book", {"item": i, "journal": state["journal"]}) for i in state["items"]], ["book"]
    )
    graph.add_edge("book", END)
    return graph


book_graph = register_graph("book-graph", book_builder(), input_model=BookInput, undo={"book": unbook})


@dataclass
class TicketState:
    """A dataclass state, as many existing graphs have."""

    ticket_id: str
    status: str = "new"
    notes: list[str] = field(default_factory=list)


class TicketInput(BaseModel):
    ticket_id: str


def triage(state: TicketState) -> dict[str, Any]:
    return {"status": "triaged", "notes": [*state.notes, f"triaged {state.ticket_id}"]}


def close(state: TicketState) -> dict[str, Any]:
    return {"status": "closed", "notes": [*state.notes, "closed"]}


def ticket_builder() -> StateGraph:
    graph = StateGraph(TicketState)
    graph.add_node("triage", triage)
    graph.add_node("close", close)
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", lambda state: "close" if state.status == "triaged" else END)
    graph.add_edge("close", END)
    return graph


ticket_graph = register_graph("ticket-graph", ticket_builder(), input_model=TicketInput)


class SlowState(TypedDict, total=False):
    seconds: float
    thread: str


class SlowInput(BaseModel):
    seconds: float


def slow(state: SlowState, config: RunnableConfig) -> dict[str, Any]:
    time.sleep(state["seconds"])
    return {"thread": config["configurable"]["thread_id"]}


def slow_builder() -> StateGraph:
    graph = StateGraph(SlowState)
    graph.add_node("slow", slow)
    graph.add_edge(START, "slow")
    graph.add_edge("slow", END)
    return graph


# A heartbeat timeout of 1 s, and a node of 2.5 s: it must keep beating to finish.
slow_graph = register_graph(
    "slow-graph",
    slow_builder(),
    input_model=SlowInput,
    default_options={
        "start_to_close_timeout": timedelta(seconds=30),
        "heartbeat_timeout": timedelta(seconds=1),
        "retry_policy": RetryPolicy(maximum_attempts=1),
    },
)


class QuoteState(TypedDict, total=False):
    question: str
    answer: str
    source: str


class QuoteInput(BaseModel):
    question: str


def quote_builder() -> StateGraph:
    """A model call behind a breaker, with a cached answer to fall back on."""
    graph = StateGraph(QuoteState)
    graph.add_node("ask_model", lambda state: {"answer": f"model: {state['question']}", "source": "model"})
    graph.add_node("cached_answer", lambda state: {"answer": "cached: try again later", "source": "cache"})
    graph.add_node("polish", lambda state: {"answer": state["answer"].upper()})
    graph.add_edge(START, "ask_model")
    graph.add_edge("ask_model", "polish")
    graph.add_edge("polish", END)
    return graph


QUOTE_BREAKER = "quote-model"
quote_graph = register_graph(
    "quote-graph",
    quote_builder(),
    input_model=QuoteInput,
    nodes={"ask_model": NodePolicy(breaker=QUOTE_BREAKER, fallback="cached_answer", queue="llm")},
)

GRAPHS: list[GraphFamily] = [
    document_graph,
    routing_graph,
    order_graph,
    confirmed_order_graph,
    fan_graph,
    slow_graph,
    book_graph,
    ticket_graph,
]


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[g.workflow for g in GRAPHS],
        activities=[a for g in GRAPHS for a in g.activities],
    )


async def _serve(address: str, task_queue: str) -> None:
    from sagaworks.client.connection import DATA_CONVERTER

    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    await worker(client, task_queue).run()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
