"""The iterative family: search -> evaluate quality -> refine the query, until the quality
target or the iteration cap.

Every round is three activities in the history, so a long search continues as new every
``iterations_per_run`` rounds (or when Temporal suggests it), carrying its rounds and its
best result; the result is the best round, not the last one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.search import SearchActivities
    from sagaworks.contracts.iterative import Best, IterativeInput, IterativeResult, IterativeStatus, Round
    from sagaworks.contracts.search import EvaluateInput, RefineInput, SearchInput
    from sagaworks import policies
    from sagaworks import Pausable


@workflow.defn
class IterativeSearchWorkflow(Pausable):
    """Refine a search over the stored documents until its measured quality is enough."""

    def __init__(self) -> None:
        self._request: IterativeInput | None = None
        self._rounds: list[Round] = []
        self._best: Best | None = None
        self._query: str | None = None
        self._current: str | None = None

    @workflow.run
    async def run(self, request: IterativeInput) -> IterativeResult:
        """Return the best round, every round's quality and why the search stopped."""
        self._request = request
        self._rounds, self._best = list(request.rounds), request.best
        self._query = request.current_query or request.query
        this_run = 0
        while True:
            await self._unpaused()
            iteration = len(self._rounds) + 1
            self._current = "search"
            found = await workflow.execute_activity_method(
                SearchActivities.search_chunks,
                SearchInput(query=self._query, top_k=request.top_k),
                summary=f"search {iteration}",
                **policies.TEXT_ANALYSIS,
            )
            self._current = "evaluate"
            quality = await workflow.execute_activity_method(
                SearchActivities.evaluate_hits,
                EvaluateInput(query=request.query, hits=found.hits),
                summary=f"evaluate {iteration}",
                **policies.TEXT_ANALYSIS,
            )
            self._rounds.append(Round(iteration=iteration, query=self._query, quality=quality, hits=len(found.hits)))
            if self._best is None or quality.score > self._best.quality.score:
                self._best = Best(iteration=iteration, query=self._query, quality=quality, hits=found.hits)
            if quality.score >= request.target_quality or iteration >= request.max_iterations:
                break
            self._current = "refine"
            self._query = await workflow.execute_activity_method(
                SearchActivities.refine_query,
                RefineInput(
                    original=request.query, current=self._query, hits=found.hits, missing_terms=quality.missing_terms
                ),
                summary=f"refine {iteration}",
                **policies.TEXT_ANALYSIS,
            )
            this_run += 1
            if this_run >= request.iterations_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    request.model_copy(
                        update={"current_query": self._query, "rounds": self._rounds, "best": self._best}
                    )
                )
        self._current = None
        self._state = "completed"
        assert self._best is not None  # at least one round ran
        return IterativeResult(
            query=request.query,
            stopped="target-reached" if self._best.quality.score >= request.target_quality else "iteration-cap",
            iterations=len(self._rounds),
            best=self._best,
            rounds=self._rounds,
        )

    @workflow.query
    def status(self) -> IterativeStatus:
        """Rounds done, the best quality so far and the query in use."""
        return IterativeStatus(
            state=self._state,
            current_step=self._current,
            done=len(self._rounds),
            total=self._request.max_iterations if self._request else 0,
            best_quality=self._best.quality.score if self._best else None,
            current_query=self._query,
        )
