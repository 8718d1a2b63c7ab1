"""The parallel-analysis family: sentiment, keywords, summary and language of one text,
each its own branch, combined when all have ended.

When the worker's LLM gateway has a model for the family, the model answers sentiment,
keywords and summary (one activity, :meth:`ModelAnalysisActivities.ask_model_analyses`,
started beside the language detection); each part it does not answer runs its offline
analysis on the CPU queue, and when a model is configured but did not answer (breaker
open, budget spent, unusable answer) the part's outcome is ``fallback`` with the reason.

Each offline branch runs under :func:`sagaworks.with_fallback`: keywords fall back to
frequent words and the summary to the lead sentences; sentiment and language have no
honest cheaper substitute, so a failure there leaves the part "not available". Either way
the other parts still count and the result says which parts are partial. The fan-out
keeps its shape on the step runner's status, pause (a branch not yet started waits) and
cancel.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import BranchOutcome, StepWorkflow, current_cpu_queue, policies, with_fallback
    from sagaworks.activities.parallel_analysis import (
        analyse_sentiment,
        detect_language,
        extract_keywords,
        frequent_keywords,
        lead_summary,
        summarise_text,
    )
    from sagaworks.activities.parallel_analysis_llm import ModelAnalysisActivities
    from sagaworks.contracts.parallel_analysis import (
        MODEL_PARTS,
        ModelAnalyses,
        ParallelAnalysisInput,
        ParallelAnalysisResult,
        ParallelAnalysisStatus,
    )
    from sagaworks.contracts.text import AnalysisPart, TextInput

MODEL_PATCH = "model-whenever-configured"
"""Runs started before it asked the model only when their input chose ``provider="llm"``."""

BRANCHES = {
    "sentiment": (analyse_sentiment, None),
    "keywords": (extract_keywords, frequent_keywords),
    "summary": (summarise_text, lead_summary),
    "language": (detect_language, None),
}
LLM_BRANCHES = {
    "sentiment": ModelAnalysisActivities.llm_sentiment,
    "keywords": ModelAnalysisActivities.llm_keywords,
    "summary": ModelAnalysisActivities.llm_summary,
}
"""The per-part model activities of runs started before :data:`MODEL_PATCH`."""

PARTS: list[AnalysisPart] = ["sentiment", "keywords", "summary", "language"]


@workflow.defn
class ParallelAnalysisWorkflow(StepWorkflow):
    """Four analyses concurrently; a failed one leaves its part empty, not the run."""

    # Its branches are no steps: a restart would reuse nothing (run it again instead).
    restarts_from_steps = False

    def __init__(self) -> None:
        super().__init__()
        self._finished: list[AnalysisPart] = []

    async def _offline(self, part: AnalysisPart, text: TextInput) -> tuple[Any, BranchOutcome]:
        primary, fallback = BRANCHES[part]
        offline = policies.ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
        return await with_fallback(primary, text, offline, fallback=fallback, summary=part)

    async def _ask_model(self, text: TextInput) -> ModelAnalyses:
        """What the model answered; nothing (each part then offline, saying why) when the
        activity itself failed."""
        await self.steps.unpaused()
        asked, outcome = await with_fallback(
            ModelAnalysisActivities.ask_model_analyses, TextInput(text=text.text), policies.MODEL, summary="model"
        )
        if asked is None:
            return ModelAnalyses(fallbacks=dict.fromkeys(MODEL_PARTS, outcome.error or "the model failed"))
        return asked

    async def _branch(
        self, part: AnalysisPart, request: ParallelAnalysisInput, model: asyncio.Future[ModelAnalyses] | None
    ) -> tuple[Any, BranchOutcome]:
        text = TextInput(text=request.text, fail=part in request.fail)
        if model is not None and part in MODEL_PARTS:
            asked = await model
            value = getattr(asked, part)
            if value is not None:
                self._finished.append(part)
                return value, BranchOutcome(status="ok", activity="ask_model_analyses")
            await self.steps.unpaused()
            value, outcome = await self._offline(part, text)
            why = asked.fallbacks.get(part)
            if why is not None and outcome.status == "ok":
                outcome = BranchOutcome(status="fallback", activity=outcome.activity, error=why)
            elif why is not None:
                outcome = outcome.model_copy(update={"error": f"model: {why}; {outcome.error}"})
        elif model is None and request.provider == "llm" and part in LLM_BRANCHES:
            offline = policies.ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
            value, outcome = await with_fallback(
                LLM_BRANCHES[part],
                text,
                policies.MODEL,
                fallback=BRANCHES[part][0],
                fallback_options=offline,
                summary=part,
            )
        else:
            await self.steps.unpaused()
            value, outcome = await self._offline(part, text)
        self._finished.append(part)
        return value, outcome

    @workflow.run
    async def run(self, request: ParallelAnalysisInput) -> ParallelAnalysisResult:
        """Return every part that could be computed and how each was obtained."""
        async with self.steps.plan(()):
            await self.steps.unpaused()
            model = (
                asyncio.ensure_future(self._ask_model(TextInput(text=request.text)))
                if workflow.patched(MODEL_PATCH)
                else None
            )
            done = await asyncio.gather(*(self._branch(part, request, model) for part in PARTS))
        values = {part: value for part, (value, _) in zip(PARTS, done, strict=True)}
        outcomes: dict[str, BranchOutcome] = {part: outcome for part, (_, outcome) in zip(PARTS, done, strict=True)}
        unavailable = [p for p in PARTS if outcomes[p].status == "unavailable"]
        fallbacks = [p for p in PARTS if outcomes[p].status == "fallback"]
        return ParallelAnalysisResult(
            sentiment=values["sentiment"],
            keywords=values["keywords"],
            summary=values["summary"],
            language=values["language"],
            parts=outcomes,
            partial=bool(unavailable or fallbacks),
            unavailable=unavailable,
            fallbacks=fallbacks,
        )

    @workflow.query
    def status(self) -> ParallelAnalysisStatus:
        """The analyses finished so far."""
        status = self.steps.status()
        running = status.state in ("running", "paused") and len(self._finished) < len(PARTS)
        return ParallelAnalysisStatus(
            **dict(status)
            | {"current_step": "analysing" if running else None, "done": len(self._finished), "total": len(PARTS)},
            finished=list(self._finished),
        )
