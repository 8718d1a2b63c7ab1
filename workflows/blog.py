"""The blog family: research -> outline -> draft -> review.

Research is the iterative family's BM25 search over the stored documents; its passages
are numbered and every later stage cites them as ``[n]``. Outline, draft and review are
one writer activity each (a Groq model, or the offline extractive composer, which says
so in the result's ``writer.method``).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.search import SearchActivities
    from sagaworks.activities.writing import WritingActivities
    from sagaworks.contracts.blog import BlogInput, BlogResult, BlogResume, BlogStatus, Citation, WritingInput
    from sagaworks.contracts.search import SearchInput
    from sagaworks import policies
    from sagaworks import Pausable

STEPS = ("research", "outline", "draft", "review")


@workflow.defn
class BlogWorkflow(Pausable):
    """A cited post on a topic from the stored documents."""

    def __init__(self) -> None:
        self._done = 0
        self._current: str | None = None

    async def _next(self, step: str) -> None:
        await self._unpaused()
        self._current = step

    @workflow.run
    async def run(self, request: BlogInput) -> BlogResult:
        """Return the Markdown post, its word count, quality, citations and writer."""
        # A restarted run (saga restart --from-stage ...) takes the outcomes of the stages
        # before it over from its source run instead of executing them (a run not
        # restarted has an empty resume point: it carries nothing).
        resume = request.resume or BlogResume(from_stage="research", source_workflow_id="")
        await self._next("research")
        found = resume.research or await workflow.execute_activity_method(
            SearchActivities.search_chunks,
            SearchInput(query=request.topic, top_k=request.sources),
            summary="research",
            **policies.TEXT_ANALYSIS,
        )
        if not found.hits:
            raise ApplicationError(
                f"topic: no stored passage matches {request.topic!r} ({found.corpus_chunks} chunks searched)",
                type="NothingToCite",
                non_retryable=True,
            )
        self._done += 1
        passages = found.hits
        await self._next("outline")
        outline = resume.outline or await workflow.execute_activity_method(
            WritingActivities.outline_post, WritingInput(topic=request.topic, passages=passages),
            summary="outline", **policies.MODEL,
        )
        self._done += 1
        await self._next("draft")
        draft = resume.draft or await workflow.execute_activity_method(
            WritingActivities.draft_post, WritingInput(topic=request.topic, passages=passages, previous=outline),
            summary="draft", **policies.MODEL,
        )
        self._done += 1
        await self._next("review")
        post = await workflow.execute_activity_method(
            WritingActivities.review_post, WritingInput(topic=request.topic, passages=passages, previous=draft),
            summary="review", **policies.MODEL,
        )
        self._done += 1
        self._current = None
        self._state = "completed"
        return BlogResult(
            topic=request.topic,
            markdown=post.markdown,
            word_count=post.word_count,
            quality=post.quality,
            citations=[
                Citation(number=n, path=h.path, chunk_index=h.chunk_index, score=h.score)
                for n, h in enumerate(passages, start=1)
            ],
            review_notes=post.notes,
            writer=post.writer,
            resumed_from=resume.source_workflow_id or None,
        )

    @workflow.query
    def status(self) -> BlogStatus:
        """The stage running and the stages done."""
        return BlogStatus(state=self._state, current_step=self._current, done=self._done, total=len(STEPS))
