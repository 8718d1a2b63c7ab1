"""The document pipeline: validate -> parse and chunk -> extract concepts -> store.

Chunk text and concepts stay in the database (claim check): the workflow passes ids and
counts. Extraction is one LLM activity per chunk, a bounded window at a time; a document
of more than ``SEGMENT_CHUNKS`` chunks is extracted by one child workflow per segment, so
no history holds more than about a hundred activities (~400 KB of JSON history each).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    import pydantic

    from activities.documents import DocumentActivities
    from workflows import policies
    from workflows.common import Pausable
    from workflows.concurrency import run_to_completion, run_windowed
    from contracts.documents import (
        ChunkInput,
        DiscardInput,
        DocumentInput,
        DocumentRef,
        DocumentResult,
        DocumentState,
        DocumentStatus,
        ExtractInput,
        ExtractRangeInput,
        ExtractSummary,
        FailureRecord,
        StoreInput,
        ValidateInput,
        document_id_for,
    )
    from workflows.saga import Saga, error_class, reported_error

SEGMENT_CHUNKS = 100
"""Chunks one workflow extracts itself; larger documents are split among children."""


def _extract_chunk(request: ExtractRangeInput, index: int):  # -> Awaitable[ExtractSummary]
    return workflow.execute_activity(
        DocumentActivities.extract_concepts,
        ExtractInput(
            document_id=request.document_id,
            content_hash=request.content_hash,
            chunk_index=index,
            run_key=request.run_key,
        ),
        summary=f"chunk {index}",
        # A cancelled extraction finishes its write before the saga discards the rows.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        **policies.MODEL,
    )


@workflow.defn
class ExtractChunksWorkflow:
    """Extract the concepts of one segment of a document's chunks."""

    @workflow.run
    async def run(self, request: ExtractRangeInput) -> int:
        """Return how many concepts the segment's chunks yielded."""
        concepts = 0

        def count(summary: ExtractSummary) -> None:
            nonlocal concepts
            concepts += summary.concept_count

        await run_windowed(
            range(request.start, request.end),
            lambda index: _extract_chunk(request, index),
            window=request.window,
            on_result=count,
        )
        return concepts


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class DocumentPipeline(Pausable):
    """Process one document; on failure remove this run's rows and record why."""

    def __init__(self) -> None:
        self._document_id = ""
        self._state: DocumentState = "running"
        self._step: str | None = "validate"
        self._paused = False
        self._done = 0
        self._total = 0

    @workflow.run
    async def run(self, request: DocumentInput) -> DocumentResult:
        """Return where the concepts are stored and the most salient ones."""
        info = workflow.info()
        run_key = f"{info.workflow_id}/{info.run_id}"
        self._document_id = document_id_for(request.path)
        try:
            doc = await self._validate(request.path, run_key)
            if doc.already_completed:
                result = await workflow.execute_activity(
                    DocumentActivities.document_result, doc, summary="reuse stored result", **policies.DATABASE_WRITE
                )
            else:
                result = await self._process(request, doc, run_key)
        except BaseException as err:
            cancelled = is_cancelled_exception(err)
            self._state = "canceled" if cancelled else "failed"
            # A rejected document's row already says why (validate_document wrote it).
            if cancelled or (isinstance(err, FailureError) and error_class(err) != "ValidationError"):
                await self._record_failure(err, run_key, cancelled)
            raise
        self._state, self._step = "completed", None
        return result

    async def _record_failure(self, err: BaseException, run_key: str, cancelled: bool) -> None:
        reported = reported_error(err)
        await workflow.execute_activity(
            DocumentActivities.record_document_failure,
            FailureRecord(
                document_id=self._document_id,
                run_key=run_key,
                error_class="Cancelled" if cancelled else error_class(err),
                message="cancelled by request" if cancelled else str(getattr(reported, "message", reported))[:2000],
                status="CANCELED" if cancelled else "FAILED",
            ),
            summary="record failure",
            **policies.DATABASE_WRITE,
        )

    async def _validate(self, path: str, run_key: str) -> DocumentRef:
        try:
            return await workflow.execute_activity(
                DocumentActivities.validate_document,
                ValidateInput(path=path, run_key=run_key),
                summary="validate",
                **policies.PROCESSING,
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type == "ValidationError":
                # Fail with the reason itself, not "activity task failed".
                raise ApplicationError(
                    f"{err.cause.message} (document rejected)",
                    *err.cause.details,
                    type="ValidationError",
                    non_retryable=True,
                ) from err
            raise

    async def _process(self, request: DocumentInput, doc: DocumentRef, run_key: str) -> DocumentResult:
        async with Saga() as saga:
            try:
                saga.add_compensation(
                    DocumentActivities.discard_document_run,
                    DiscardInput(document_id=doc.document_id, content_hash=doc.content_hash, run_key=run_key),
                    step="store",
                )
                self._step = "chunk"
                # run_to_completion: a cancel waits for the step, so the discard
                # compensation never races a write still in flight.
                summary = await run_to_completion(workflow.execute_activity(
                    DocumentActivities.chunk_document,
                    ChunkInput(
                        document=doc,
                        run_key=run_key,
                        chunk_size=request.chunk_size,
                        chunk_overlap=request.chunk_overlap,
                    ),
                    summary="parse and chunk",
                    **policies.PROCESSING,
                ))
                self._total = summary.chunk_count
                self._step = "extract"
                await self._extract(
                    ExtractRangeInput(
                        document_id=doc.document_id,
                        content_hash=doc.content_hash,
                        run_key=run_key,
                        start=0,
                        end=summary.chunk_count,
                        window=request.extract_window,
                    )
                )
                self._step = "store"
                return await run_to_completion(workflow.execute_activity(
                    DocumentActivities.store_concepts,
                    StoreInput(document=doc, run_key=run_key),
                    summary="store concepts",
                    **policies.DATABASE_WRITE,
                ))
            except BaseException:
                self._state = "compensating"
                raise

    async def _extract(self, whole: ExtractRangeInput) -> None:
        if whole.end <= SEGMENT_CHUNKS:
            await run_windowed(
                range(whole.start, whole.end),
                lambda index: _extract_chunk(whole, index),
                window=whole.window,
                on_result=self._chunk_done,
                before_each=self._unpaused,
            )
            return
        # One child per segment, one after another: pause takes effect between segments.
        for start in range(whole.start, whole.end, SEGMENT_CHUNKS):
            await self._unpaused()
            segment = whole.model_copy(update={"start": start, "end": min(start + SEGMENT_CHUNKS, whole.end)})
            await workflow.execute_child_workflow(
                ExtractChunksWorkflow.run,
                segment,
                id=f"{workflow.info().workflow_id}/extract-{segment.start}",
            )
            self._done += segment.end - segment.start

    def _chunk_done(self, _summary: ExtractSummary) -> None:
        self._done += 1

    @workflow.query
    def status(self) -> DocumentStatus:
        """Current step and chunks done / total."""
        return DocumentStatus(
            document_id=self._document_id,
            state=self._state,
            current_step=self._step,
            done=self._done,
            total=self._total,
        )
