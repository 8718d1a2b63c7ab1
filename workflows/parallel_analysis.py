"""The parallel-analysis family: sentiment, keywords, summary and language of one text,
four activities at once, combined when all have ended. With ``provider="llm"`` the chat
model analyses sentiment, keywords and summary, each falling back to its offline analysis.

Each branch runs under :func:`workflows.fallback.with_fallback`: keywords fall back to
frequent words and the summary to the lead sentences; sentiment and language have no
honest cheaper substitute, so a failure there leaves the part "not available". Either way
the other parts still count and the result says which parts are partial.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.text_analysis import (
        analyse_sentiment,
        detect_language,
        extract_keywords,
        frequent_keywords,
        lead_summary,
        summarise_text,
    )
    from sagaworks.activities.llm_analysis import ChatAnalysisActivities
    from sagaworks.contracts.parallel_analysis import ParallelAnalysisInput, ParallelAnalysisResult, ParallelAnalysisStatus
    from sagaworks.contracts.text import AnalysisPart, TextInput
    from sagaworks import policies
    from sagaworks import Pausable
    from sagaworks.workflows.cpu import current_cpu_queue
    from sagaworks.workflows.fallback import with_fallback

BRANCHES = {
    "sentiment": (analyse_sentiment, None),
    "keywords": (extract_keywords, frequent_keywords),
    "summary": (summarise_text, lead_summary),
    "language": (detect_language, None),
}
LLM_BRANCHES = {
    "sentiment": ChatAnalysisActivities.llm_sentiment,
    "keywords": ChatAnalysisActivities.llm_keywords,
    "summary": ChatAnalysisActivities.llm_summary,
}


@workflow.defn
class ParallelAnalysisWorkflow(Pausable):
    """Four analyses concurrently; a failed one leaves its part empty, not the run."""

    def __init__(self) -> None:
        self._finished: list[AnalysisPart] = []

    async def _branch(self, part: AnalysisPart, request: ParallelAnalysisInput):  # -> (value, outcome)
        primary, fallback = BRANCHES[part]
        offline = policies.ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
        text = TextInput(text=request.text, fail=part in request.fail)
        if request.provider == "llm" and part in LLM_BRANCHES:
            value, outcome = await with_fallback(
                LLM_BRANCHES[part], text, policies.MODEL, fallback=primary, fallback_options=offline, summary=part
            )
        else:
            value, outcome = await with_fallback(primary, text, offline, fallback=fallback, summary=part)
        self._finished.append(part)
        return value, outcome

    @workflow.run
    async def run(self, request: ParallelAnalysisInput) -> ParallelAnalysisResult:
        """Return every part that could be computed and how each was obtained."""
        await self._unpaused()
        parts: list[AnalysisPart] = ["sentiment", "keywords", "summary", "language"]
        done = await asyncio.gather(*(self._branch(part, request) for part in parts))
        values = {part: value for part, (value, _) in zip(parts, done)}
        outcomes = {part: outcome for part, (_, outcome) in zip(parts, done)}
        unavailable = [p for p in parts if outcomes[p].status == "unavailable"]
        fallbacks = [p for p in parts if outcomes[p].status == "fallback"]
        self._state = "completed"
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
        return ParallelAnalysisStatus(
            state=self._state,
            current_step=None if len(self._finished) == len(BRANCHES) else "analysing",
            done=len(self._finished),
            total=len(BRANCHES),
            finished=list(self._finished),
        )
