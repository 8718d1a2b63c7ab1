"""Run an existing LangGraph graph durably (the ``sagaworks[langgraph]`` extra).

One call, :func:`register_graph`, turns a ``StateGraph`` (or its compiled graph) into a family:
every node runs as a Temporal activity of its own (``GRAPH.NODE``) with its own timeouts and
retry policy, and, declared by a :class:`NodePolicy`, through one of the engine's circuit
breakers with a fallback node and on the rate-limited LLM task queue; edges, conditional edges,
``Send`` fan-out and ``Command(goto=...)`` are decided in the workflow; the state is
checkpointed by the history (no LangGraph checkpointer); ``interrupt()`` waits for the engine's
approval (``approve`` / ``reject`` Updates, a deadline, escalation) and resumes the node with
the decision as its ``Command(resume=...)`` value, ``{"approved": bool, "approver": str,
"reason": str | None}``; a node may name an undo, registered before the node runs and run in
reverse on failure or cancel by the engine's Saga (so it must be safe for a node that never
took effect); a run restarts from any node it reached (:func:`restart_graph`), with the state
edited. The graph object is not changed: LangGraph's own ``invoke`` still runs it.

Built on ``temporalio-langgraph`` 0.1.0 for the activity side (its wrapper runs a node with
a LangGraph runnable config restored, which makes ``interrupt()`` and ``Command`` work in an
activity). Its ``LangGraphPlugin`` is not used: it rewrites the graph's nodes in place (the
graph then no longer runs with ``invoke``), runs LangGraph's Pregel loop inside the workflow
and offers no compensation, no restart from a node, interrupts only as raw workflow state
and nothing the CLI, API or console read.

Not supported (refused at registration or by the node, naming it): join edges
(``add_edge([a, b], c)``), subgraphs as nodes, ``Command(goto=Send(...))``, LangGraph's
node-level ``RetryPolicy`` and ``CachePolicy`` (use the node's activity options), stores,
a node's ``writer`` argument (a node gets the state and, if it asks, LangGraph's
``runtime`` and a ``config`` whose ``thread_id`` is the workflow id), streaming modes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from sagaworks import policies
from sagaworks._breakers import breaker_config
from sagaworks._registry import WorkerResources
from sagaworks.langgraph._activities import graph_activities, node_activity_name, undo_activity_name
from sagaworks.langgraph._graph import builder_of, check_supported
from sagaworks.langgraph._models import RESTART_MEMO, GraphRestart, GraphStatus, NodeInput, NodeOutput, NodeUpdate
from sagaworks.langgraph._restart import restart_graph
from sagaworks.langgraph._workflow import GraphSpec, GraphWorkflow, InterruptPolicy, NodePolicy, workflow_class

__all__ = [
    "RESTART_MEMO",
    "GraphFamily",
    "GraphRestart",
    "GraphStatus",
    "GraphWorkflow",
    "InterruptPolicy",
    "NodeInput",
    "NodeOutput",
    "NodePolicy",
    "NodeUpdate",
    "node_activity_name",
    "register_graph",
    "restart_graph",
    "undo_activity_name",
]


class GraphFamily:
    """A registered graph: its workflow, its activities and the family the worker serves."""

    def __init__(
        self,
        name: str,
        workflow: type[GraphWorkflow],
        spec: GraphSpec,
        undo: dict[str, Callable[..., Any]],
        input_model: type[BaseModel],
        description: str,
    ) -> None:
        self.name = name
        self.spec = spec
        self.interrupt = spec.interrupt
        self.workflow = workflow
        """The workflow class (type ``langgraph-NAME``)."""
        self._undo = undo
        self.input_model = input_model
        self.description = description

    def worker_activities(
        self, resources: WorkerResources | None = None
    ) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        """The activities of the worker's main task queue and of its LLM queue: one per node
        (``NAME.NODE``), one per undo (``NAME.NODE.undo``); nodes with a breaker use the
        engine's breakers over ``resources.db``."""
        breakers = None
        if resources is not None and any(p.breaker for p in self.spec.node_policies.values()):
            from sagaworks._breakers import Breakers

            breakers = Breakers(resources.db, {})
        return graph_activities(self.name, self.spec.builder, self._undo, self.spec.node_policies, breakers)

    @property
    def activities(self) -> list[Callable[..., Any]]:
        """Every activity, for a plain Temporal worker (a graph whose nodes use no breaker
        and no LLM queue)."""
        main, llm = self.worker_activities()
        return main + llm

    @functools.cached_property
    def family(self) -> Any:
        """The :class:`sagaworks.Family` to register under the ``sagaworks.families`` entry point."""
        from sagaworks import ApprovalDeclaration, Family
        from sagaworks._approval import duration_text

        family = Family(
            self.name,
            workflow=self.workflow,
            input_model=self.input_model,
            description=self.description,
            activities=lambda resources: self.worker_activities(resources)[0],
            llm_activities=lambda resources: self.worker_activities(resources)[1],
            updates=("approve", "reject"),
            extra="langgraph",
            requires=("langgraph", "temporalio.langgraph"),
        )
        # saga approve|reject, the API and the console offer the interrupt's decision by this.
        escalation = (
            f"it is asked of {', '.join(self.interrupt.escalations[0].approvers)}"
            if self.interrupt.escalations
            else "it is rejected automatically"
        )
        family.approval = ApprovalDeclaration(
            subject="this graph's interrupt",
            deadline=duration_text(self.interrupt.deadline),
            escalation=escalation,
        )
        return family


def register_graph(
    name: str,
    graph: Any,
    *,
    input_model: type[BaseModel],
    output_model: type[BaseModel] | None = None,
    nodes: Mapping[str, policies.ActivityOptions | NodePolicy] | None = None,
    default_options: policies.ActivityOptions | None = None,
    undo: Mapping[str, Callable[..., Any]] | None = None,
    interrupt: InterruptPolicy = InterruptPolicy(),
    recursion_limit: int = 25,
    description: str = "",
) -> GraphFamily:
    """Register a LangGraph graph as a durable family.

    Args:
        name: The family's name (``saga run NAME``); activities are ``NAME.NODE``.
        graph: A ``StateGraph`` or the graph its ``compile()`` returned (left unchanged).
        input_model: The run's input: its fields are the graph's initial state.
        output_model: What the run returns, validated from the final state (None: the state).
        nodes: Per node, its activity options (``sagaworks.policies.ActivityOptions``:
            timeouts, retry policy) or a :class:`NodePolicy` (options, a breaker with a
            fallback node, the rate-limited LLM queue); a node not named takes ``default_options``.
        default_options: Defaults for every node (``policies.PROCESSING`` if None).
        undo: Per node, a function of the state after that node that undoes its effect; run
            as an activity (``policies.COMPENSATION``) in reverse order when a later node
            fails or the run is cancelled.
        interrupt: How an ``interrupt()`` waits for its approval.
        recursion_limit: Supersteps a run may take, as LangGraph's ``recursion_limit``.
        description: One line for ``saga catalog``.

    Raises:
        ValueError: the graph uses what the bridge cannot run, or a node/undo name is unknown.
    """
    builder = builder_of(graph)
    check_supported(builder)
    declared = dict(nodes or {})
    undo = dict(undo or {})
    for label, names in (("nodes", declared), ("undo", undo)):
        unknown = sorted(set(names) - set(builder.nodes))
        if unknown:
            raise ValueError(
                f"{label}: {', '.join(unknown)} is not a node of graph {name!r} ({', '.join(builder.nodes)})"
            )
    node_policies = {n: p for n, p in declared.items() if isinstance(p, NodePolicy)}
    for node, policy in node_policies.items():
        if policy.fallback is not None and (
            policy.breaker is None or policy.fallback not in builder.nodes or policy.fallback == node
        ):
            raise ValueError(
                f"nodes: {node}: a fallback needs a breaker and another node of graph {name!r}, not {policy.fallback!r}"
            )
        if policy.breaker is not None:
            breaker_config(policy.breaker)  # a bad name is refused now, not at the first call
    default = default_options or policies.PROCESSING
    options = {n: p.resolved_options(default) if isinstance(p, NodePolicy) else p for n, p in declared.items()}
    spec = GraphSpec(
        name=name,
        builder=builder,
        output_model=output_model,
        node_options={n: options.get(n, default) for n in builder.nodes},
        undo_nodes=frozenset(undo),
        interrupt=interrupt,
        recursion_limit=recursion_limit,
        node_policies=node_policies,
    )
    return GraphFamily(name, workflow_class(spec, input_model), spec, undo, input_model, description)
