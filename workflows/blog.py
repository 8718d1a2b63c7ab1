"""The blog family: research -> outline -> draft -> review, on the step runner.

Research is the iterative family's BM25 search over the stored documents; its passages
are numbered and every later step cites them as ``[n]``. Outline, draft and review are
one writer activity each (a Groq model, or the offline extractive composer, which says
so in the result's ``writer.method``); a step the composer wrote although a model is
configured says why in its own result (``fallback``), and the result lists them all
(``fallbacks``). ``saga restart ID --from STEP`` reuses the steps
before STEP (the step runner's restart).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import StepWorkflow, policies
    from sagaworks.activities.search import SearchActivities
    from sagaworks.activities.writing import WritingActivities
    from sagaworks.contracts.blog import BLOG_STEPS, BlogInput, BlogResult, Citation, WritingInput, WrittenText
    from sagaworks.contracts.search import SearchHits, SearchInput


@workflow.defn
class BlogWorkflow(StepWorkflow):
    """A cited post on a topic from the stored documents."""

    @workflow.run
    async def run(self, request: BlogInput) -> BlogResult:
        """Return the Markdown post, its word count, quality, citations and writer."""
        # Runs restarted before the step runner's restart carry the earlier steps'
        # outcomes in their input (``resume``); they take those over as they did.
        legacy = request.resume
        async with self.steps.plan(BLOG_STEPS, options=policies.MODEL) as steps:
            search = SearchInput(query=request.topic, top_k=request.sources)
            if legacy is not None and legacy.research is not None:
                found: SearchHits = steps.taken_over("research", legacy.research)
            else:
                found = await steps.run(
                    "research",
                    SearchActivities.search_chunks,
                    search,
                    options=policies.TEXT_ANALYSIS,
                    describe=lambda r: f"{len(r.hits)} passages of {r.corpus_chunks} chunks",
                )
            if not found.hits:
                raise ApplicationError(
                    f"topic: no stored passage matches {request.topic!r} ({found.corpus_chunks} chunks searched)",
                    type="NothingToCite",
                    non_retryable=True,
                )
            passages = found.hits
            if legacy is not None and legacy.outline is not None:
                outline = steps.taken_over("outline", WrittenText(text=legacy.outline))
            else:
                outline = await steps.run(
                    "outline",
                    WritingActivities.outline_post,
                    WritingInput(topic=request.topic, passages=passages),
                    describe=_written,
                )
            if legacy is not None and legacy.draft is not None:
                draft = steps.taken_over("draft", WrittenText(text=legacy.draft))
            else:
                draft = await steps.run(
                    "draft",
                    WritingActivities.draft_post,
                    WritingInput(topic=request.topic, passages=passages, previous=outline.text),
                    describe=_written,
                )
            post = await steps.run(
                "review",
                WritingActivities.review_post,
                WritingInput(topic=request.topic, passages=passages, previous=draft.text),
                describe=lambda r: (
                    f"{r.word_count} words, quality {r.quality.score:.2f}"
                    + (f"; offline composer: {r.writer.fallback}" if r.writer.fallback else "")
                ),
            )
        # The steps the offline composer wrote although a model is configured, and why.
        fell_back = {"outline": outline.fallback, "draft": draft.fallback, "review": post.writer.fallback}
        restart = steps.restart
        resumed_from = restart.source if restart is not None else (legacy.source_workflow_id if legacy else None)
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
            resumed_from=resumed_from or None,
            fallbacks=[f"{step}: {why}" for step, why in fell_back.items() if why],
        )


def _written(written: WrittenText) -> str:
    """A writing step's outcome in the run's status: its length, and who wrote it if not the model."""
    words = f"{len(written.text.split())} words"
    return f"{words}; offline composer: {written.fallback}" if written.fallback else words
