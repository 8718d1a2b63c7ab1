"""Workflow side: LangGraph's loop, decided in the workflow, each node an activity.

One superstep at a time: the nodes due run as activities (a ``Send`` fan-out in
parallel), their updates merge into the state with the graph's reducers, then the fixed
edges, the conditional edges (their path functions run here, on the state, so they must be
pure) and any ``Command(goto=...)`` decide the next nodes. The state lives in the
workflow and every node's input and output in the history: no checkpointer. An
``interrupt()`` waits on the engine's :class:`~sagaworks.Approval` (deadline, escalation)
and the node runs again with the decision as its ``Command(resume=...)`` value. A node
with an undo registers it on the engine's :class:`~sagaworks.Saga` before it runs (the
undo is told whether the node completed), and the Saga runs them in reverse when a node
fails or the run is cancelled. A node may go through a circuit breaker, with a fallback
node, and run on the rate-limited LLM task queue (:class:`NodePolicy`).

Why these workflows run outside the SDK's sandbox (``sandboxed=False``): the sandbox
builds each run's workflow by re-importing the class's module in a fresh module space
and taking the class by name from it (``from MODULE import CLASS``). A graph's workflow
class is made at run time by :func:`workflow_class`, from the user's graph object
(its ``StateGraph``, reducers, path functions) that :func:`~sagaworks.langgraph.register_graph`
was given: a fresh import of this module holds no such class, and a fresh import of the
user's module would rebuild the graph (and LangGraph, langchain-core and pydantic models)
inside the sandbox for every run. The determinism the sandbox would check at run time is
checked statically instead, like every unsandboxed workflow of the engine: this module and
``_graph.py`` are in tests/test_determinism.py's list, and the path functions the workflow
calls must be pure (said where they are registered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from langgraph.constants import END
from langgraph.graph import StateGraph
from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from sagaworks import policies
from sagaworks._approval import Approval, ApprovalUpdates, Escalation
from sagaworks._circuit import guarded
from sagaworks._models import RunState, StepTiming
from sagaworks._pause import Pausable
from sagaworks._saga import Saga
from sagaworks.langgraph._activities import node_activity_name, undo_activity_name
from sagaworks.langgraph._graph import Task, first_tasks, merge, next_tasks
from sagaworks.langgraph._models import RESTART_MEMO, GraphRestart, GraphStatus, NodeInput, NodeOutput, NodeUpdate

DEFAULT_NODE_OPTIONS = policies.PROCESSING
"""A node's timeouts and retry policy unless its graph declares its own."""

UNDO_BEFORE_NODE = "sagaworks.langgraph.undo-before-node"
"""The patch under which a node's undo is registered before the node runs (runs recorded
before it registered the undo once the node completed)."""


@dataclass(frozen=True)
class NodePolicy:
    """How one node runs, beyond its activity options (``register_graph(nodes={NAME: ...})``).

    ``breaker`` names one of the engine's circuit breakers (:class:`sagaworks.Breakers`,
    configured like any other: ``SAGAWORKS_BREAKER_NAME``); the node's call goes through
    it, and when it is open the node fails fast: with a ``fallback`` node the workflow
    runs that node in its place (its update merges, the node's edges are followed, the
    status names both), without one the attempt is retried when the breaker's trial is due.
    ``queue="llm"`` runs the node on the worker's rate-limited LLM task queue
    (:func:`sagaworks.policies.llm_task_queue`). ``options`` None takes the engine's default
    for such a node: ``policies.LLM_PASS`` for an LLM node with a fallback,
    ``policies.MODEL`` for one without, else the graph's ``default_options``.
    """

    options: policies.ActivityOptions | None = None
    breaker: str | None = None
    fallback: str | None = None
    queue: Literal["main", "llm"] = "main"

    def resolved_options(self, default: policies.ActivityOptions) -> policies.ActivityOptions:
        """The node's activity options: its own, else the engine's default for its kind."""
        if self.options is not None:
            return self.options
        if self.queue == "llm":
            return policies.LLM_PASS if self.fallback else policies.MODEL
        return default


@dataclass(frozen=True)
class InterruptPolicy:
    """How an ``interrupt()`` waits: who decides, until when, and who is asked next."""

    deadline: timedelta = timedelta(hours=24)
    approvers: Sequence[str] = ()
    escalations: Sequence[Escalation] = ()


@dataclass(frozen=True)
class GraphSpec:
    """Everything a graph's workflow reads, fixed at registration."""

    name: str
    builder: StateGraph[Any, Any, Any, Any]
    output_model: type[BaseModel] | None
    node_options: dict[str, policies.ActivityOptions] = field(default_factory=dict)
    undo_options: policies.ActivityOptions = field(default_factory=lambda: policies.COMPENSATION)
    undo_nodes: frozenset[str] = frozenset()
    node_policies: dict[str, NodePolicy] = field(default_factory=dict)
    interrupt: InterruptPolicy = InterruptPolicy()
    recursion_limit: int = 25


class GraphWorkflow(ApprovalUpdates, Pausable):
    """The workflow every registered graph runs (one subclass per graph, see :func:`workflow_class`)."""

    spec: ClassVar[GraphSpec]

    if TYPE_CHECKING:
        # Defined on each graph's own subclass (workflow_class), whose argument type is the
        # graph's input model; declared here so `client.execute_workflow(cls.run, ...)` types.
        async def run(self, arg: Any) -> Any: ...

    def __init__(self) -> None:
        self.approval = Approval()
        self._saga = Saga()
        self._values: dict[str, Any] = {}
        self._updates: list[NodeUpdate] = []
        self._timings: list[StepTiming] = []
        self._running: list[str] = []
        self._interrupt: Any = None
        self._restart: GraphRestart | None = None
        self._deciding = asyncio.Lock()
        self._fallbacks: dict[str, tuple[str, str | None]] = {}

    @workflow.query
    def status(self) -> GraphStatus:
        """Where the run stands: nodes done, running, awaiting approval, the state, the updates."""
        # Pausable's state is a plain str; this workflow sets only RunState's values.
        state = self._saga.state if self._saga.state != "running" else cast(RunState, self._state)
        current = ", ".join(self._running) or None
        if current and self.approval.awaiting:
            current = f"{current}: awaiting approval"
        return GraphStatus(
            state=state,
            current_step=current,
            done=len(self._timings),
            # A run takes one path through the graph: its nodes once it ended, all until then.
            total=len(self._timings) if state == "completed" else len(self.spec.builder.nodes),
            plan=list(self.spec.builder.nodes),
            completed_steps=[t.step for t in self._timings],
            compensations=self._saga.records,
            steps=list(self._timings),
            restarted_from=self._restart.source if self._restart else None,
            values=dict(self._values),
            updates=list(self._updates),
            interrupt=self._interrupt,
            **self.approval.progress().model_dump(),
        )

    async def _run_graph(self, arg: BaseModel) -> Any:
        spec = self.spec
        memo = workflow.memo_value(RESTART_MEMO, None)
        self._restart = None if memo is None else GraphRestart.model_validate(memo)
        if self._restart is not None:
            if self._restart.from_node not in spec.builder.nodes:
                raise ApplicationError(
                    f"restart from node {self._restart.from_node!r}: the "
                    f"graph's nodes are {', '.join(spec.builder.nodes)}",
                    type="InvalidInput",
                    non_retryable=True,
                )
            self._values = dict(self._restart.state)
            tasks: list[Task] = [(self._restart.from_node, None)]
        else:
            self._values = arg.model_dump(mode="json")
            tasks = first_tasks(spec.builder, self._values)
        async with self._saga:
            supersteps = 0
            while tasks:
                supersteps += 1
                if supersteps > spec.recursion_limit:
                    raise ApplicationError(
                        f"recursion limit of {spec.recursion_limit} supersteps reached",
                        type="GraphRecursionError",
                        non_retryable=True,
                    )
                if self._paused:
                    await self._unpaused()
                before = dict(self._values)
                # Every node of the superstep ends (and registers its undo) before a failure
                # of one of them compensates: an undo of a sibling still running is not lost.
                settled = await asyncio.gather(
                    *(self._node(node, sent, before) for node, sent in tasks), return_exceptions=True
                )
                failure = next((r for r in settled if isinstance(r, BaseException)), None)
                if failure is not None:
                    raise failure
                outputs = [r for r in settled if isinstance(r, NodeOutput)]
                ran: list[str] = []
                gotos: list[str] = []
                for (node, _), out in zip(tasks, outputs, strict=False):
                    if out.update:
                        merge(spec.builder, self._values, out.update)
                    fallback, breaker = self._fallbacks.pop(node, (None, None))
                    self._updates.append(NodeUpdate(node=node, update=out.update, fallback=fallback, breaker=breaker))
                    ran.append(node)
                    gotos.extend(g for g in out.goto if g != END)
                following = next_tasks(spec.builder, ran, self._values)
                tasks = following + [(g, None) for g in dict.fromkeys(gotos) if (g, None) not in following]
        await workflow.wait_condition(workflow.all_handlers_finished)
        if spec.output_model is None:
            return dict(self._values)
        return spec.output_model.model_validate(self._values)

    def _options(self, node: str) -> policies.ActivityOptions:
        options = self.spec.node_options.get(node, DEFAULT_NODE_OPTIONS)
        policy = self.spec.node_policies.get(node)
        if policy is not None and policy.queue == "llm":
            options = {**options, "task_queue": policies.llm_task_queue(workflow.info().task_queue)}
        return options

    async def _node(self, node: str, sent: dict[str, Any] | None, before: dict[str, Any]) -> NodeOutput:
        spec = self.spec
        given = dict(sent if sent is not None else before)
        policy = spec.node_policies.get(node) or NodePolicy()
        started = workflow.now()
        self._running.append(node)
        self._saga.current_step = node
        undo: NodeInput | None = None
        if node in spec.undo_nodes and workflow.patched(UNDO_BEFORE_NODE):
            # Registered before the node runs: a node that takes effect and then fails (a
            # lost response, a timeout, an error after its write) is undone too; the undo
            # gets the state before the node and ``completed=False`` until the node completes.
            undo = NodeInput(state=given, completed=False)
            self._saga.add_compensation(undo_activity_name(spec.name, node), undo, step=node, options=spec.undo_options)
        ran_as, breaker = node, None
        resume: list[Any] = []
        try:
            while True:
                arg = NodeInput(state=given, resume=resume)
                if policy.fallback is not None and ran_as == node:
                    call = await guarded(
                        node_activity_name(spec.name, node),
                        arg,
                        summary=node,
                        fallback=node_activity_name(spec.name, policy.fallback),
                        fallback_options=self._options(policy.fallback),
                        **self._options(node),
                    )
                    if call.fallback_taken:
                        ran_as, breaker = policy.fallback, call.breaker or policy.breaker
                    out = NodeOutput.model_validate(call.value)
                else:
                    out = await workflow.execute_activity(
                        node_activity_name(spec.name, ran_as),
                        arg,
                        result_type=NodeOutput,
                        summary=node if ran_as == node else f"{node} (fallback: {ran_as})",
                        **self._options(ran_as),
                    )
                if len(out.interrupts) <= len(resume):
                    break
                resume.append(await self._decide(out.interrupts[len(resume)]))
        finally:
            self._running.remove(node)
        outcome = "done" if ran_as == node else f"fallback to {ran_as}: breaker {breaker} open"
        self._timings.append(StepTiming(step=node, outcome=outcome, started_at=started, finished_at=workflow.now()))
        if ran_as != node:
            self._fallbacks[node] = (ran_as, breaker)
        elif node in spec.undo_nodes:
            after = dict(given)
            merge(spec.builder, after, out.update or {})
            if undo is not None:
                undo.state, undo.completed = after, True  # the registered undo now undoes what it did
            else:
                self._saga.add_compensation(
                    undo_activity_name(spec.name, node), NodeInput(state=after), step=node, options=spec.undo_options
                )
        return out

    async def _decide(self, value: Any) -> dict[str, Any]:
        """Wait for approve/reject of an ``interrupt(value)``; the node's resume value."""
        async with self._deciding:  # interrupts of parallel nodes are asked one after the other
            if self.approval.state in ("approved", "rejected"):
                self.approval = Approval()  # a second interrupt asks again
            self._interrupt = value
            policy = self.spec.interrupt
            outcome = await self.approval.wait(
                policy.deadline, approvers=policy.approvers, escalations=policy.escalations
            )
            self._interrupt = None
        return {"approved": outcome.decision == "approved", "approver": outcome.decided_by, "reason": outcome.reason}


def workflow_class(spec: GraphSpec, input_model: type[BaseModel]) -> type[GraphWorkflow]:
    """A workflow class of its own for ``spec`` (type ``langgraph-NAME``), whose run takes
    ``input_model`` and returns the output model (or the state as a dict)."""

    async def run(self: GraphWorkflow, arg: Any) -> Any:
        return await self._run_graph(arg)

    run.__annotations__ = {"arg": input_model, "return": spec.output_model or dict}
    camel = "".join(part.capitalize() for part in spec.name.replace("_", "-").split("-"))
    run.__name__, run.__qualname__ = "run", f"{camel}Graph.run"  # a module-level class to the SDK
    cls = type(f"{camel}Graph", (GraphWorkflow,), {"spec": spec, "run": workflow.run(run), "__module__": __name__})
    return workflow.defn(name=f"langgraph-{spec.name}", sandboxed=False)(cls)
