"""The step runner: what every workflow made of steps would otherwise write itself.

A workflow subclasses :class:`StepWorkflow` and runs each step through ``self.steps``::

    @workflow.defn
    class TripSaga(StepWorkflow):
        @workflow.run
        async def run(self, trip: Trip) -> Booked:
            async with self.steps.plan(("hotel", "flight"), local=True) as steps:
                hotel = await steps.run("hotel", book_hotel, trip, undo=cancel_hotel)
                flight = await steps.run("flight", book_flight, trip, undo=cancel_flight)
            return Booked(hotel=hotel, flight=flight)

and gets, written once here: the ``status`` query (:class:`StepStatus`: state, current
step, done/total, completed steps, compensations, step timings from ``workflow.now()``),
``pause``/``resume`` signals that hold the run before its next step, progress details in
the Web UI (``workflow.set_current_details``), a timeout and retry policy per step
(:data:`sagaworks.policies.DATABASE_WRITE` unless the step or the plan says otherwise),
local or remote activities, and compensation: a step's undo activity is registered
before the step runs, and a failure or a cancellation undoes the registered steps through
:class:`~sagaworks.Saga` (in reverse, or at once with ``parallel_compensation``).

Restart from any step: each step's activity is scheduled with the step's name as its
summary, so the source run's history says which result belongs to which step (local
activities too: their markers keep the summary). ``saga restart ID --from STEP`` starts a
new run of the same workflow id and input whose memo holds the earlier steps' results
(:data:`RESTART_MEMO`); the runner hands those back instead of scheduling the steps again.
The memo is part of the run's start event, so replays read the same results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from sagaworks import policies
from sagaworks._concurrency import run_to_completion
from sagaworks._models import RESTART_MEMO, StepsRestart, StepStatus, StepTiming, restart_result_key
from sagaworks._saga import Saga, ends_saga

T = TypeVar("T")


class Steps:
    """Runs a workflow's steps; see the module documentation."""

    def __init__(self) -> None:
        self._names: tuple[str, ...] = ()
        self._local = False
        self._options: policies.ActivityOptions = policies.DATABASE_WRITE
        self._saga = Saga()
        self._paused = False
        self._restart_read = False
        self._restart_memo: StepsRestart | None = None
        self._reusing = False
        self.current_step: str | None = None
        """The step running now (None between steps and while paused before one)."""
        self.started: list[str] = []
        """Every step the run reached (ran or reused), once each, in order: their undos are registered."""
        self.timings: list[StepTiming] = []
        """Every completed step's timing, in order."""

    def plan(
        self,
        names: Sequence[str] = (),
        *,
        local: bool = False,
        options: policies.ActivityOptions | None = None,
        parallel_compensation: bool = False,
        compensation_options: policies.ActivityOptions | None = None,
    ) -> Steps:
        """Set the run's steps and defaults; use the result as ``async with``.

        Args:
            names: The steps in order: ``status`` counts them (``total``) and a restart
                must name one of them. Empty: the total is what ran.
            local: Run steps as local activities unless a step says otherwise (short
                steps: no server round trip each; their results are still recorded).
            options: Timeouts and retry policy of every step unless a step says
                otherwise; ``policies.DATABASE_WRITE`` by default.
            parallel_compensation: Undo the steps all at once instead of in reverse.
            compensation_options: Timeouts and retries of every undo activity;
                ``policies.COMPENSATION`` (retried for up to a day) by default.

        Raises:
            ApplicationError: (non-retryable ``InvalidInput``) the run was restarted from
                a step that is not among ``names``.
        """
        self._names = tuple(names)
        self._local = local
        self._options = options or policies.DATABASE_WRITE
        self._saga = Saga(parallel=parallel_compensation, options=compensation_options)
        restart = self.restart
        self._reusing = restart is not None
        if restart is not None and self._names and restart.from_step not in self._names:
            raise ApplicationError(
                f"restart from step {restart.from_step!r}: this workflow's steps are {', '.join(self._names)}",
                type="InvalidInput",
                non_retryable=True,
            )
        return self

    @property
    def saga(self) -> Saga:
        """The saga holding the steps' undos (to register one of the workflow's own)."""
        return self._saga

    @property
    def restart(self) -> StepsRestart | None:
        """Where this run was restarted from, if it was (``saga restart ID --from STEP``)."""
        if not self._restart_read:
            memo = workflow.memo_value(RESTART_MEMO, None)
            self._restart_memo = None if memo is None else StepsRestart.model_validate(memo)
            self._restart_read = True
        return self._restart_memo

    @property
    def origin_run_id(self) -> str:
        """The run id that owns this run's effects: the first run id of the execution (a
        Temporal reset keeps it), or of the run a restart chain began with. Rows keyed by
        step and owned by it are the same rows in a reset or restarted run."""
        restart = self.restart
        return restart.origin_run_id if restart is not None else workflow.info().first_execution_run_id

    def key(self, step: str) -> str:
        """The idempotency key of ``step``: workflow id + step, the same in every attempt,
        replay, reset and restart of the run."""
        return f"{workflow.info().workflow_id}:{step}"

    @property
    def paused(self) -> bool:
        """Whether the run holds before its next step."""
        return self._paused

    def pause(self) -> None:
        """Start no new step until :meth:`resume`."""
        self._paused = True

    def resume(self) -> None:
        """Go on after a pause."""
        self._paused = False

    async def unpaused(self) -> None:
        """Hold here while the run is paused: for work done outside :meth:`run` (a fan-out's
        branches, a fetch before the first step), which a pause must hold as well."""
        if self._paused:  # wait_condition costs a task and a loop turn even when true
            await workflow.wait_condition(lambda: not self._paused)

    async def run(
        self,
        name: str,
        step: Callable[..., Awaitable[T]] | Callable[..., T] | str,
        arg: Any,
        *,
        undo: Callable[..., Any] | None = None,
        undo_arg: Any = None,
        options: policies.ActivityOptions | None = None,
        local: bool | None = None,
        describe: Callable[[T], str] | None = None,
        result_type: type[T] | None = None,
        delay: float | timedelta = 0,
        shielded: bool | None = None,
        held: bool = False,
    ) -> T:
        """Run step ``name``: the activity ``step`` on ``arg``, or its result reused.

        ``step`` is the activity, or its type name (a workflow that must not import its
        activities' module); a name needs ``result_type``.

        Args:
            undo: The activity that undoes the step, registered before the step runs (a
                step can take effect and still fail): it must be safe for a step that never
                took effect. A cancel that arrives while such a step runs lets the step
                finish first, so the undo never races it.
            undo_arg: The undo's argument; ``arg`` by default.
            options: This step's timeouts and retry policy (default: the plan's).
            local: Run as a local activity (default: the plan's).
            describe: Says what the result was, for the step's timing (``outcome``).
            result_type: The result's type where the activity's annotation does not say
                (a reused result is decoded to it).
            delay: A durable timer before the step, seconds or a timedelta (demos, tests of
                pause and cancel); none before a reused step.
            shielded: A cancel that arrives while the step runs waits for it to finish
                (a step whose write must not race what the workflow does on cancel);
                by default, when the step has an ``undo``.
            held: The workflow already waited out a pause for this step, before work that
                prepares it (the alerts a plan stage raises first): it begins at once.
        """
        if isinstance(step, str) and result_type is None:
            # Without it a named activity's result arrives as plain JSON, and a reused one
            # cannot be read back from the memo.
            raise TypeError(f"step {name!r} names its activity ({step!r}): give its result_type")
        restart = self.restart
        if restart is not None and name == restart.from_step:
            self._reusing = False
        reuse = self._reusing and restart is not None and name in restart.reused
        index, started = await self._begin(name, delay=0 if reuse else delay, held=held)
        if undo is not None:
            self._saga.add_compensation(undo, arg if undo_arg is None else undo_arg, step=name)
        total = len(self._names) or index
        if reuse:
            workflow.set_current_details(f"step {index}/{total}: {name} (reused)")
            if result_type is None:
                result_type = activity._Definition.get_name_and_result_type(step)[1]
            result: T = workflow.memo_value(restart_result_key(name), type_hint=result_type)  # type: ignore[arg-type]  # a step's result type is a class the SDK reads at run time
            reused = True
        else:
            self._reusing = False  # a step not handed over: every later one runs too
            workflow.set_current_details(f"step {index}/{total}: {name}")
            execute = (
                workflow.execute_local_activity
                if (self._local if local is None else local)
                else workflow.execute_activity
            )
            call = execute(step, arg, summary=name, result_type=result_type, **(options or self._options))  # type: ignore[call-overload,arg-type]  # one call for either kind of activity, or a name: the SDK types each alone
            shield = undo is not None if shielded is None else shielded
            result = await (run_to_completion(call) if shield else call)
            reused = False
        self._end(name, started, describe(result) if describe is not None else "done", reused=reused)
        return result

    async def run_here(
        self,
        name: str,
        body: Callable[[], Awaitable[T]],
        *,
        describe: Callable[[T], str] | None = None,
        delay: float | timedelta = 0,
    ) -> T:
        """Run step ``name`` as workflow code: ``body()`` may schedule several activities,
        child workflows or a bounded fan-out (:func:`sagaworks.run_windowed`), where
        :meth:`run` takes one activity.

        The step counts like any other: ``status`` names it while it runs, a pause holds
        the run before it, its timing is recorded. Its result is no one activity's, so no
        history records it and a restart cannot reuse it: ``saga restart ID --from STEP``
        names it or an earlier step (a later one is refused: this step never completed
        in a form a restart can take over). A restart from it runs it, and every step
        after it, again.

        Args:
            body: The step's work; its activities' summaries should not be another
                step's name (a restart reads step results by summary).
            describe: Says what the result was, for the step's timing (``outcome``).
            delay: A durable timer before the step, seconds or a timedelta.

        Raises:
            ApplicationError: (non-retryable ``InvalidInput``) the run is a restart that
                claims to reuse this step's result.
        """
        restart = self.restart
        if restart is not None and name == restart.from_step:
            self._reusing = False
        if self._reusing and restart is not None and name in restart.reused:
            raise ApplicationError(
                f"restart from {restart.from_step!r}: step {name!r} runs as workflow code and records no result "
                f"to reuse; restart from {name!r} or an earlier step",
                type="InvalidInput",
                non_retryable=True,
            )
        self._reusing = False
        index, started = await self._begin(name, delay=delay)
        workflow.set_current_details(f"step {index}/{len(self._names) or index}: {name}")
        result = await body()
        self._end(name, started, describe(result) if describe is not None else "done", reused=False)
        return result

    async def _begin(self, name: str, *, delay: float | timedelta, held: bool = False) -> tuple[int, datetime]:
        """Wait out ``delay`` and a pause, then mark ``name`` as running: its index (from 1:
        its place in the plan, else among the steps begun) and its start time.

        A step run again (a second pass, a retry with other input) is part of the step that
        began: a pause holds between steps, not inside one, and the step keeps its index."""
        if delay:
            await workflow.sleep(delay)
        if name not in self.started:
            if not held:
                await self.unpaused()
            self.started.append(name)
        self.current_step = self._saga.current_step = name
        index = self._names.index(name) if name in self._names else self.started.index(name)
        return index + 1, workflow.now()

    def _end(self, name: str, started: datetime, outcome: str, *, reused: bool) -> None:
        self.timings.append(
            StepTiming(step=name, outcome=outcome, started_at=started, finished_at=workflow.now(), reused=reused)
        )
        self.current_step = None

    def reuses(self, name: str) -> bool:
        """Whether a restart hands step ``name``'s result over (its :meth:`run` will schedule
        nothing): work a step's input needs, done outside the steps (a fan-out before a
        step), can then be skipped too. Ask it before the steps run, after :meth:`plan`."""
        restart = self.restart
        return self._reusing and restart is not None and name in restart.reused

    def taken_over(self, name: str, result: T, *, describe: Callable[[T], str] | None = None) -> T:
        """Record step ``name`` as reused with ``result``, obtained by the workflow itself
        (a result its input carries over from an earlier run), and return ``result``.

        Nothing is scheduled: the step counts as done (``reused`` in its timing), as a step
        a restart hands over does.
        """
        self.started.append(name)
        now = workflow.now()
        outcome = describe(result) if describe is not None else "done"
        self.timings.append(StepTiming(step=name, outcome=outcome, started_at=now, finished_at=now, reused=True))
        return result

    @property
    def state(self) -> str:
        """running, paused, compensating, completed, failed or canceled."""
        if self._saga.state == "running" and self._paused:
            return "paused"
        return self._saga.state

    def status(self) -> StepStatus:
        """The run's :class:`StepStatus` (what the ``status`` query answers)."""
        # A step run again (its timings listed in ``steps``) is one completed step.
        done = list(dict.fromkeys(t.step for t in self.timings))
        return StepStatus(
            state=self.state,  # type: ignore[arg-type]  # StepStatus narrows the runner's state to RunState's values, all it sets
            current_step=self.current_step,
            done=len(done),
            total=len(self._names) or len(done),
            plan=list(self._names),
            completed_steps=done,
            compensations=self._saga.records,
            steps=list(self.timings),
            restarted_from=self._restart_memo.source if self._restart_memo is not None else None,
        )

    async def __aenter__(self) -> Steps:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        if isinstance(exc, GeneratorExit):
            # The worker is closing the run's coroutine (evicted from its cache, or shut
            # down): outside the workflow's event loop, where no workflow call is possible and
            # the run's state must stay as its history left it.
            return False
        # A run none of whose steps registered an undo is no saga: its failure is reported
        # as it is, not wrapped in a SagaCompensated error with nothing compensated.
        if exc is not None and ends_saga(exc) and not self._saga.has_compensations:
            self._saga.end(exc)
            self.current_step = None
            return False
        try:
            return await self._saga.__aexit__(exc_type, exc, tb)
        finally:
            if exc is not None:
                self.current_step = None
                workflow.set_current_details(self._saga.state)
            else:
                workflow.set_current_details("completed")


class StepWorkflow:
    """Base class of a workflow on the step runner: ``self.steps``, and the ``status``
    query and ``pause``/``resume`` signals every family answers.

    A subclass with an ``__init__`` of its own calls ``super().__init__()``; one whose
    ``status`` carries more fields overrides ``status`` (a ``StepStatus`` subclass built
    from ``self.steps.status()``).
    """

    restarts_from_steps: ClassVar[bool] = True
    """Whether ``saga restart ID --from STEP`` applies. False for a workflow that uses the
    runner only for its status, pause and cancel (a fan-out whose branches are not steps):
    a restart would reuse nothing, so it is refused instead."""

    def __init__(self) -> None:
        self.steps = Steps()

    @workflow.query
    def status(self) -> StepStatus:
        """The state, the step running now, the steps done and undone, their timings."""
        return self.steps.status()

    @workflow.signal
    def pause(self) -> None:
        """Start no new step until resumed."""
        self.steps.pause()

    @workflow.signal
    def resume(self) -> None:
        """Go on after a pause."""
        self.steps.resume()
