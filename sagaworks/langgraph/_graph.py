"""What the bridge reads from a LangGraph ``StateGraph``: nodes, edges, branches, reducers.

Everything here is pure: the workflow calls it to decide the next nodes and to merge node
updates into the state, exactly as LangGraph's own loop would for the supported features
(see the package docstring for what is not supported).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import Any, is_typeddict

from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.constants import END, START
from langgraph.graph import StateGraph
from langgraph.types import Send
from pydantic import BaseModel


def builder_of(graph: Any) -> StateGraph[Any, Any, Any, Any]:
    """The ``StateGraph`` of a builder or of a compiled graph."""
    if isinstance(graph, StateGraph):
        return graph
    builder = getattr(graph, "builder", None)
    if isinstance(builder, StateGraph):
        return builder
    raise TypeError(f"expected a langgraph StateGraph or its compiled graph, not {type(graph).__name__}")


def node_function(builder: StateGraph[Any, Any, Any, Any], node: str) -> Callable[..., Any]:
    """The user's function behind ``node`` (sync or async)."""
    runnable = builder.nodes[node].runnable
    func = getattr(runnable, "func", None) or getattr(runnable, "afunc", None)
    if func is None:
        raise TypeError(f"node {node!r}: only function nodes run as activities (a subgraph node does not)")
    return func  # type: ignore[no-any-return]  # langgraph's runnable keeps the node's function untyped


def check_supported(builder: StateGraph[Any, Any, Any, Any]) -> None:
    """Refuse, naming it, what the workflow cannot run as LangGraph would."""
    if builder.waiting_edges:
        joins = ", ".join(f"{list(starts)} -> {end}" for starts, end in builder.waiting_edges)
        raise ValueError(f"join edges (add_edge with a list of starts) are not supported: {joins}")
    for name in builder.nodes:
        node_function(builder, name)


def to_schema(schema: type[Any], state: dict[str, Any]) -> Any:
    """The state as a node of ``schema`` receives it (a dict, a dataclass or a model)."""
    if schema is dict or is_typeddict(schema):
        return dict(state)
    if dataclasses.is_dataclass(schema):
        names = {f.name for f in dataclasses.fields(schema)}
        return schema(**{k: v for k, v in state.items() if k in names})
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(state)
    return dict(state)


def to_update(value: Any) -> dict[str, Any] | None:
    """A node's return value as a partial state update (None: no update)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"a node must return a dict, a dataclass or a pydantic model, not {type(value).__name__}")


def merge(builder: StateGraph[Any, Any, Any, Any], state: dict[str, Any], update: dict[str, Any]) -> None:
    """Apply ``update`` to ``state`` in place: a reducer key (``Annotated[list, add]``)
    folds the value in, any other key takes it."""
    for key, value in update.items():
        channel = builder.channels.get(key)
        if isinstance(channel, BinaryOperatorAggregate) and key in state:
            state[key] = channel.operator(state[key], value)
        else:
            state[key] = value


Task = tuple[str, "dict[str, Any] | None"]
"""A node to run next and, for a ``Send``, the state it is sent (None: the graph's state)."""


def first_tasks(builder: StateGraph[Any, Any, Any, Any], state: dict[str, Any]) -> list[Task]:
    """The nodes that run first: the entry point's edges and branches."""
    return next_tasks(builder, [START], state)


def next_tasks(builder: StateGraph[Any, Any, Any, Any], ran: Sequence[str], state: dict[str, Any]) -> list[Task]:
    """What runs after the nodes ``ran`` (one superstep), given the merged ``state``:
    their fixed edges, then their branches' choices, ``Send`` packets kept apart."""
    names: list[str] = []
    sends: list[Task] = []

    def add(target: Hashable) -> None:
        if isinstance(target, Send):
            sends.append((target.node, to_update(target.arg) or {}))
        elif target != END and target not in names:
            names.append(str(target))

    for node in dict.fromkeys(ran):
        for start, end in sorted(builder.edges):
            if start == node:
                add(end)
        for branch in builder.branches.get(node, {}).values():
            chosen = branch.path.invoke(to_schema(builder.state_schema, state))
            for choice in chosen if isinstance(chosen, list) else [chosen]:
                add(choice if isinstance(choice, Send) or branch.ends is None else branch.ends[choice])
    return [(name, None) for name in names] + sends
