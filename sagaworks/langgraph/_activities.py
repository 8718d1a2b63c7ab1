"""Worker side: each node of a graph, and each undo, as its own Temporal activity.

A node activity is named ``GRAPH.NODE`` (the history counts them per node) and runs the
user's function through ``temporalio-langgraph``'s activity wrapper, which restores a
LangGraph runnable config around the call so ``interrupt()`` works: with no resume value
the call stops at the interrupt and the wrapper returns it; given the values the approval
produced (``Command(resume=...)``), ``interrupt()`` returns them and the node goes on.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langgraph._internal._constants import CONFIG_KEY_CHECKPOINT_NS, CONFIG_KEY_SCRATCHPAD
from langgraph.graph import StateGraph
from langgraph.types import Command
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.langgraph._activity import ActivityInput, wrap_activity

from sagaworks.langgraph._graph import node_function, to_schema, to_update
from sagaworks.langgraph._models import NodeInput, NodeOutput

if TYPE_CHECKING:
    from sagaworks._breakers import Breakers
    from sagaworks.langgraph._workflow import NodePolicy


def node_activity_name(graph: str, node: str) -> str:
    """The activity type of ``node`` of ``graph``."""
    return f"{graph}.{node}"


def undo_activity_name(graph: str, node: str) -> str:
    """The activity type of the undo of ``node`` of ``graph``."""
    return f"{graph}.{node}.undo"


async def _heartbeats() -> None:
    """Tell the server the worker is alive while a node runs, at a third of its heartbeat
    timeout: a node longer than that timeout is not cut short, a dead worker is noticed."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        return
    while True:
        await asyncio.sleep(timeout.total_seconds() / 3)
        activity.heartbeat()


def _node_activity(
    graph: str,
    node: str,
    func: Callable[..., Any],
    schema: type[Any],
    policy: NodePolicy | None,
    breakers: Breakers | None,
) -> Callable[..., Any]:
    wrapped = wrap_activity(func)
    takes_config = "config" in inspect.signature(func).parameters

    async def run_node(arg: NodeInput) -> NodeOutput:
        info = activity.info()
        config = {
            "configurable": {
                CONFIG_KEY_CHECKPOINT_NS: node,
                CONFIG_KEY_SCRATCHPAD: {"resume": list(arg.resume)},
            },
            "metadata": {"langgraph_node": node},
        }
        # A node that takes LangGraph's config gets the run as its thread.
        kwargs = (
            {"config": {"configurable": {"thread_id": info.workflow_id}, "metadata": {"langgraph_node": node}}}
            if takes_config
            else {}
        )
        call = ActivityInput(args=(to_schema(schema, arg.state),), kwargs=kwargs, langgraph_config=config)
        beating = asyncio.create_task(_heartbeats())
        try:
            if breakers is None or policy is None or policy.breaker is None:
                out = await wrapped(call)
            else:
                out = await _through_breaker(
                    breakers, policy.breaker, policy.fallback is not None, lambda: wrapped(call)
                )
        finally:
            beating.cancel()
        if out.langgraph_interrupts:
            return NodeOutput(interrupts=[i.value for i in out.langgraph_interrupts])
        command = out.langgraph_command
        if isinstance(command, Command):
            goto = command.goto if isinstance(command.goto, (list, tuple)) else [command.goto] if command.goto else []
            if any(not isinstance(g, str) for g in goto):
                raise ApplicationError(
                    f"node {node!r}: Command(goto=Send(...)) is not supported", type="InvalidInput", non_retryable=True
                )
            return NodeOutput(update=to_update(command.update), goto=[str(g) for g in goto])
        return NodeOutput(update=to_update(out.result))

    run_node.__name__ = run_node.__qualname__ = node
    return activity.defn(name=node_activity_name(graph, node))(run_node)


async def _through_breaker(breakers: Breakers, breaker: str, has_fallback: bool, node_call: Callable[[], Any]) -> Any:
    """The node's call through its breaker: an open one raises ``CircuitOpen`` without
    calling it (non-retryable when the node has a fallback for the workflow to run).

    The breaker's state is in the database (blocking calls), so it runs in a thread; the
    node itself still runs on this event loop."""
    loop = asyncio.get_running_loop()

    def call() -> Any:
        return asyncio.run_coroutine_threadsafe(node_call(), loop).result()

    return await asyncio.to_thread(lambda: breakers.call(breaker, call, fallback=has_fallback))


def _undo_activity(graph: str, node: str, func: Callable[..., Any], schema: type[Any]) -> Callable[..., Any]:
    async def run_undo(arg: NodeInput) -> None:
        # Registered before its node ran: when the node did not complete (``arg.completed``
        # False) the undo is given the state before it and must be safe for what never happened.
        result = func(to_schema(schema, arg.state))
        if hasattr(result, "__await__"):
            await result

    run_undo.__name__ = run_undo.__qualname__ = f"{node}.undo"
    return activity.defn(name=undo_activity_name(graph, node))(run_undo)


def graph_activities(
    graph: str,
    builder: StateGraph[Any, Any, Any, Any],
    undo: dict[str, Callable[..., Any]],
    node_policies: dict[str, NodePolicy] | None = None,
    breakers: Breakers | None = None,
) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
    """The activities a worker serves for ``graph``: one per node, one per undo; those of
    the worker's main task queue, then those of its rate-limited LLM queue.

    Raises:
        ValueError: a node declares a breaker and no ``breakers`` are given.
    """
    policies = node_policies or {}
    guarded = sorted(n for n, p in policies.items() if p.breaker)
    if guarded and breakers is None:
        raise ValueError(
            f"graph {graph!r}: nodes {', '.join(guarded)} go through breakers: build its activities "
            "with the worker's database (GraphFamily.worker_activities)"
        )
    schema = builder.state_schema
    main: list[Callable[..., Any]] = []
    llm: list[Callable[..., Any]] = []
    for n in builder.nodes:
        policy = policies.get(n)
        activity_fn = _node_activity(graph, n, node_function(builder, n), schema, policy, breakers)
        (llm if policy is not None and policy.queue == "llm" else main).append(activity_fn)
    return main + [_undo_activity(graph, n, f, schema) for n, f in undo.items()], llm
