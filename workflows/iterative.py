"""The iterative family: search -> evaluate quality -> refine the query, until the quality
target or the iteration cap, each a step of the step runner (``search N``, ``evaluate N``,
``refine N``).

Every round is three activities in the history, so a long search continues as new every
``iterations_per_run`` rounds (or when Temporal suggests it), carrying its rounds and its
best result; the result is the best round, not the last one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import StepWorkflow, policies
    from sagaworks.activities.search import SearchActivities
    from sagaworks.contracts.iterative import Best, IterativeInput, IterativeResult, IterativeStatus, Round
    from sagaworks.contracts.search import EvaluateInput, RefineInput, SearchInput


@workflow.defn
class IterativeSearchWorkflow(StepWorkflow):
    """Refine a search over the stored documents until its measured quality is enough."""

    def __init__(self) -> None:
        super().__init__()
        self._request: IterativeInput | None = None
        self._rounds: list[Round] = []
        self._best: Best | None = None
        self._query: str | None = None

    @workflow.run
    async def run(self, request: IterativeInput) -> IterativeResult:
        """Return the best round, every round's quality and why the search stopped."""
        self._request = request
        self._rounds, self._best = list(request.rounds), request.best
        self._query = request.current_query or request.query
        this_run = 0
        async with self.steps.plan(options=policies.TEXT_ANALYSIS) as steps:
            while True:
                iteration = len(self._rounds) + 1
                found = await steps.run(
                    f"search {iteration}",
                    SearchActivities.search_chunks,
                    SearchInput(query=self._query, top_k=request.top_k),
                    describe=lambda r: f"{len(r.hits)} hits",
                )
                quality = await steps.run(
                    f"evaluate {iteration}",
                    SearchActivities.evaluate_hits,
                    EvaluateInput(query=request.query, hits=found.hits),
                    describe=lambda q: f"quality {q.score:.2f}",
                )
                self._rounds.append(
                    Round(iteration=iteration, query=self._query, quality=quality, hits=len(found.hits))
                )
                if self._best is None or quality.score > self._best.quality.score:
                    self._best = Best(iteration=iteration, query=self._query, quality=quality, hits=found.hits)
                if quality.score >= request.target_quality or iteration >= request.max_iterations:
                    break
                refine = RefineInput(
                    original=request.query, current=self._query, hits=found.hits, missing_terms=quality.missing_terms
                )
                self._query = await steps.run(
                    f"refine {iteration}", SearchActivities.refine_query, refine, describe=str
                )
                this_run += 1
                if this_run >= request.iterations_per_run or workflow.info().is_continue_as_new_suggested():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(
                        request.model_copy(
                            update={"current_query": self._query, "rounds": self._rounds, "best": self._best}
                        )
                    )
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
        status = self.steps.status()
        return IterativeStatus(
            **dict(status) | {"done": len(self._rounds), "total": self._request.max_iterations if self._request else 0},
            best_quality=self._best.quality.score if self._best else None,
            current_query=self._query,
        )
