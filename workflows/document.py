"""The document pipeline: validate -> parse and chunk -> extract concepts -> store.

Chunk text and concepts stay in the database (claim check): the workflow passes ids and
counts. Extraction is one LLM activity per ``chunks_per_activity`` chunks, a bounded window
at a time; a document of more than ``SEGMENT_CHUNKS`` chunks is extracted by one child workflow per segment, so
no history holds more than about a hundred activities (~400 KB of JSON history each).

Runs started since :data:`STEPS_PATCH` run on the step runner (:class:`sagaworks.StepWorkflow`):
the steps are :data:`~sagaworks.contracts.document.DOCUMENT_STEPS`, and ``saga restart ID
--from STEP`` restarts one from any of them up to ``extract``, reusing the results of the
steps before it (the chunks themselves stay in the database, keyed by the version).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import (
        ErrorClass,
        StepWorkflow,
        error_class,
        policies,
        reported_error,
        run_to_completion,
        run_windowed,
    )
    from sagaworks.activities.document.activities import DocumentActivities
    from sagaworks.contracts.document import (
        DOCUMENT_STEPS,
        ChunkInput,
        ChunkSummary,
        DocumentInput,
        DocumentRef,
        DocumentResult,
        DocumentState,
        DocumentStatus,
        ExtractInput,
        ExtractRangeInput,
        ExtractSummary,
        FinaliseInput,
        FinaliseResult,
        FinalStatus,
        StoreInput,
        ValidateInput,
        document_id_for,
        document_workflow_id,
    )

SEGMENT_CHUNKS = 100
"""Chunks one workflow extracts itself; larger documents are split among children."""


def _extract_chunks(request: ExtractRangeInput, first: int):  # -> Awaitable[ExtractSummary]
    """The extraction activity of the chunks from ``first`` (``chunks_per_activity`` of them)."""
    count = min(request.chunks_per_activity, request.end - first)
    return workflow.execute_activity_method(
        DocumentActivities.extract_concepts,
        ExtractInput(
            document_id=request.document_id,
            content_hash=request.content_hash,
            chunk_index=first,
            run_key=request.run_key,
            chunk_count=count,
        ),
        summary=f"chunk {first}" if count == 1 else f"chunks {first}-{first + count - 1}",
        # A cancelled extraction finishes its write before the saga discards the rows.
        cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        **policies.model_calls(count),
    )


async def _extract_range(
    request: ExtractRangeInput,
    on_result: Callable[[ExtractSummary], None],
    before_each: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Extract the chunks of ``request``, ``request.window`` activities at a time."""
    await run_windowed(
        range(request.start, request.end, request.chunks_per_activity),
        lambda first: _extract_chunks(request, first),
        window=request.window,
        on_result=on_result,
        before_each=before_each,
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

        await _extract_range(request, count)
        return concepts


EXTRACT_GROUPS_PATCH = "extract-chunk-groups"
"""Deprecated (docs/patches.md, stage 2): every run extracts ``chunks_per_activity`` chunks per
activity. A run recorded before the patch replays only where it took the same commands (a
document of no more chunks than ``extract_window``, whose chunks are asked one per activity
either way)."""

FINALISE_PATCH = "document-finalise"
"""Deprecated (docs/patches.md, stage 2): every run resolves the path first and ends with one
``finalise_document`` step. Runs recorded before the patch, which ended through a saga's discard
and ``record_document_failure``, no longer replay (tests/histories/retired/)."""

STEPS_PATCH = "document-steps"
"""Runs started since carry this marker: they run on the step runner (each single-activity
step summarised by its name, so ``saga restart --from STEP`` finds its result) and refuse
a ``resume`` in their input. Runs recorded before (``tests/histories/document_finalised_*``,
``restarted_document.json``) replay through :meth:`DocumentPipeline._run_finalised`."""


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class DocumentPipeline(StepWorkflow):
    """Process one document; however the run ends, its last step sets the row's final state.

    The run resolves the path first: the document's workflow id derives from its real path,
    and a run started under another id (a relative path, ``..``, a symlink) hands the work
    to a child under the document's own id, so one document never has two runs at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._document_id = ""
        self._state: DocumentState = "running"
        self._step: str | None = "validate"
        self._done = 0
        self._total = 0
        self._fallbacks: list[str] = []
        self._path = ""
        """The document's path: as given, then resolved (what finalising records)."""
        self._doc: DocumentRef | None = None
        """The validated version, once known (the rows a failed run removes are its)."""

    @workflow.run
    async def run(self, request: DocumentInput) -> DocumentResult:
        """Return where the concepts are stored and the most salient ones."""
        info = workflow.info()
        run_key = f"{info.workflow_id}/{info.run_id}"
        self._document_id = document_id_for(request.path)
        workflow.deprecate_patch(FINALISE_PATCH)
        if not workflow.patched(STEPS_PATCH):
            return await self._run_finalised(request, run_key)
        return await self._run_steps(request, run_key)

    async def _run_steps(self, request: DocumentInput, run_key: str) -> DocumentResult:
        """Resolve, validate, chunk, extract, store on the step runner; then finalise."""
        if request.resume is not None:
            # Before finalising starts: a refused input must not finalise (fail) anyone's row.
            raise ApplicationError(
                "resume: only restarts recorded before the step runner carry one; restart a run with "
                "`saga restart ID --from STEP`",
                type=ErrorClass.VALIDATION,
                non_retryable=True,
            )
        # Before finalising starts too: a restart from a step the pipeline lacks touches no row.
        steps = self.steps.plan(DOCUMENT_STEPS, options=policies.PROCESSING)

        async def body() -> DocumentResult:
            async with steps:
                path = await steps.run("resolve", DocumentActivities.resolve_document, request.path, shielded=True)
                if (delegated := await self._delegated(request, path)) is not None:
                    return delegated
                self._step = "validate"
                self._doc = doc = await steps.run(
                    "validate",
                    DocumentActivities.validate_document,
                    ValidateInput(
                        path=path, run_key=run_key, chunk_size=request.chunk_size, chunk_overlap=request.chunk_overlap
                    ),
                    shielded=True,
                    describe=lambda d: (
                        f"{d.format}, {d.size_bytes} bytes" + (", stored before" if d.already_completed else "")
                    ),
                )
                if steps.restart is not None and "validate" in steps.restart.reused:
                    # A restart: the source run validated this version; what follows
                    # executes even though a result may be stored.
                    self._doc = doc = doc.model_copy(update={"already_completed": False})
                return await self._stored_or(doc, lambda: self._stepped(request, doc, run_key))

        return await self._finalising(body, request.path, run_key)

    async def _delegated(self, request: DocumentInput, path: str) -> DocumentResult | None:
        """The child run's result when ``path`` (resolved) is another workflow id's document;
        else None, and ``path`` is this run's document from now on."""
        own_id = document_workflow_id(document_id_for(path))
        if workflow.info().workflow_id != own_id:
            self._step = "delegate"
            return await self._delegate(request.model_copy(update={"path": path}), own_id)
        self._path, self._document_id = path, document_id_for(path)
        return None

    async def _stored_or(self, doc: DocumentRef, process: Callable[[], Awaitable[DocumentResult]]) -> DocumentResult:
        """The stored result when this version was processed before, else ``process()``."""
        if doc.already_completed:
            return await workflow.execute_activity_method(
                DocumentActivities.document_result, doc, summary="reuse stored result", **policies.DATABASE_WRITE
            )
        return await process()

    async def _finalising(
        self, body: Callable[[], Awaitable[DocumentResult]], path: str, run_key: str
    ) -> DocumentResult:
        """Run ``body``; however it ends (unless it handed the document to a child run),
        finalise the document's row, and fail with the reason itself."""
        self._step, self._path, self._doc = "resolve", path, None
        try:
            result = await body()
        except BaseException as err:
            if self._step == "delegate":
                self._state = "canceled" if is_cancelled_exception(err) else "failed"
                raise
            failure = await self._finalise_failure(err, self._path, self._doc, run_key)
            if failure is err:
                raise
            raise failure from err
        if self._step == "delegate":
            return result
        await self._finalise("COMPLETED", self._path, self._doc, run_key)
        self._state, self._step = "completed", None
        return result

    async def _stepped(self, request: DocumentInput, doc: DocumentRef, run_key: str) -> DocumentResult:
        """Chunk, extract and store as steps; each write finishes before a cancel is acted on."""
        self._step = "chunk"
        summary: ChunkSummary = await self.steps.run(
            "chunk",
            DocumentActivities.chunk_document,
            ChunkInput(
                document=doc, run_key=run_key, chunk_size=request.chunk_size, chunk_overlap=request.chunk_overlap
            ),
            shielded=True,
            describe=lambda c: f"{c.chunk_count} chunks, {c.char_count} characters",
        )
        whole = self._to_extract(request, doc, summary, run_key)
        await self.steps.run_here("extract", lambda: self._extract(whole), describe=lambda _: f"{self._done} chunks")
        self._step = "store"
        result = await self.steps.run(
            "store",
            DocumentActivities.store_concepts,
            StoreInput(document=doc, run_key=run_key),
            options=policies.DATABASE_WRITE,
            shielded=True,
            describe=lambda r: f"{r.concept_count} concepts",
        )
        if self._fallbacks:
            result = result.model_copy(update={"fallback": "; ".join(self._fallbacks)[:2000]})
        return result

    async def _run_finalised(self, request: DocumentInput, run_key: str) -> DocumentResult:
        """The pipeline as runs recorded between :data:`FINALISE_PATCH` and :data:`STEPS_PATCH`
        executed it (a restart then carried its resume point in the input)."""
        info = workflow.info()
        resume = request.resume
        if (
            resume is not None
            and resume.document is not None
            and (document_workflow_id(resume.document.document_id) != info.workflow_id)
        ):
            # Before finalising starts: a refused resume point must not finalise (fail) anyone's row.
            raise ApplicationError(
                f"resume.document: {resume.document.document_id} is not this run's document "
                f"({info.workflow_id}); only saga restart of that document's own run may carry it",
                type=ErrorClass.VALIDATION,
                non_retryable=True,
            )

        async def body() -> DocumentResult:
            if resume is not None and resume.document is not None:
                # A restart (saga restart --from-stage chunk|extract): the source run
                # resolved and validated this version, and its chunks are stored by
                # version; what follows executes even though a result may be stored.
                self._doc = doc = resume.document.model_copy(update={"already_completed": False})
                self._path, self._document_id = doc.path, doc.document_id
            else:
                path = await run_to_completion(
                    workflow.execute_activity_method(
                        DocumentActivities.resolve_document, request.path, summary="resolve path", **policies.PROCESSING
                    )
                )
                if (delegated := await self._delegated(request, path)) is not None:
                    return delegated
                self._step = "validate"
                self._doc = doc = await run_to_completion(
                    workflow.execute_activity_method(
                        DocumentActivities.validate_document,
                        ValidateInput(
                            path=path,
                            run_key=run_key,
                            chunk_size=request.chunk_size,
                            chunk_overlap=request.chunk_overlap,
                        ),
                        summary="validate",
                        **policies.PROCESSING,
                    )
                )
            return await self._stored_or(doc, lambda: self._steps(request, doc, run_key))

        return await self._finalising(body, request.path, run_key)

    async def _delegate(self, request: DocumentInput, workflow_id: str) -> DocumentResult:
        try:
            return await workflow.execute_child_workflow(
                DocumentPipeline.run, request, id=workflow_id, parent_close_policy=ParentClosePolicy.REQUEST_CANCEL
            )
        except WorkflowAlreadyStartedError:
            raise ApplicationError(
                f"{request.path} is being processed by workflow {workflow_id} right now",
                type="DocumentBusy",
                non_retryable=True,
            ) from None

    async def _finalise(
        self, status: FinalStatus, path: str, doc: DocumentRef | None, run_key: str, reason: BaseException | None = None
    ) -> FinaliseResult:
        reported = reported_error(reason) if reason is not None else None
        request = FinaliseInput(
            document_id=self._document_id,
            path=path,
            run_key=run_key,
            status=status,
            rows_key=doc.rows_key if doc is not None and not doc.already_completed else None,
            error_class=None if reason is None else "Cancelled" if status == "CANCELED" else error_class(reason),
            message=None
            if reported is None
            else "cancelled by request"
            if status == "CANCELED"
            else str(getattr(reported, "message", reported))[:2000],
        )
        summary = f"finalise {status}"
        if status != "COMPLETED" and request.rows_key is not None and "chunk" in self.steps.started:
            # It removes the chunks this run stored: the chunk step's compensation, named so
            # (the Saga's "compensate STEP") for `saga restart`, which refuses to reuse them.
            summary = "compensate chunk"
        # Shielded: a cancellation must not stop the run from recording how it ended; and,
        # like a compensation, it is retried until the database takes it (up to a day).
        return await run_to_completion(
            workflow.execute_activity_method(
                DocumentActivities.finalise_document, request, summary=summary, **policies.COMPENSATION
            ),
            reraise_cancel=False,
        )

    async def _finalise_failure(
        self, err: BaseException, path: str, doc: DocumentRef | None, run_key: str
    ) -> BaseException:
        """Record how the run ended; return what the workflow fails with."""
        if is_cancelled_exception(err):
            self._state = "compensating"
            await self._finalise("CANCELED", path, doc, run_key, err)
            self._state = "canceled"
            return err
        if not isinstance(err, (FailureError, pydantic.ValidationError)):
            return err  # a bug in this code: the workflow task fails and is retried
        kind = error_class(err)
        self._state = "compensating"
        rejected = kind == ErrorClass.VALIDATION
        done = await self._finalise("REJECTED" if rejected else "FAILED", path, doc, run_key, err)
        self._state = "failed"
        reported = reported_error(err)
        message = str(getattr(reported, "message", reported))
        details = getattr(reported, "details", ())
        if rejected:
            # Fail with the reason itself, not "activity task failed".
            return ApplicationError(f"{message} (document rejected)", *details, type=kind, non_retryable=True)
        return ApplicationError(
            message,
            {"failed_step": self._step, "removed_rows": done.removed_rows},
            type=kind,
            non_retryable=True,
        )

    async def _steps(self, request: DocumentInput, doc: DocumentRef, run_key: str) -> DocumentResult:
        """Chunk, extract and store; each write finishes before a cancel is acted on.

        A run restarted at ``extract`` takes the chunk count over from its source run.
        """
        summary = request.resume.chunks if request.resume is not None else None
        if summary is None:
            self._step = "chunk"
            # run_to_completion: a cancel waits for the step, so what follows never races
            # a write still in flight.
            summary = await run_to_completion(
                workflow.execute_activity_method(
                    DocumentActivities.chunk_document,
                    ChunkInput(
                        document=doc,
                        run_key=run_key,
                        chunk_size=request.chunk_size,
                        chunk_overlap=request.chunk_overlap,
                    ),
                    summary="parse and chunk",
                    **policies.PROCESSING,
                )
            )
        await self._extract(self._to_extract(request, doc, summary, run_key))
        self._step = "store"
        return await run_to_completion(
            workflow.execute_activity_method(
                DocumentActivities.store_concepts,
                StoreInput(document=doc, run_key=run_key),
                summary="store concepts",
                **policies.DATABASE_WRITE,
            )
        )

    def _to_extract(
        self, request: DocumentInput, doc: DocumentRef, chunks: ChunkSummary, run_key: str
    ) -> ExtractRangeInput:
        """Every chunk of ``doc`` to extract, now that chunking counted them (the extract step starts)."""
        self._total = chunks.chunk_count
        self._step = "extract"
        return ExtractRangeInput(
            document_id=doc.document_id,
            content_hash=doc.rows_key,
            run_key=run_key,
            start=0,
            end=chunks.chunk_count,
            window=request.extract_window,
            chunks_per_activity=self._chunks_per_activity(request, chunks.chunk_count),
        )

    @staticmethod
    def _chunks_per_activity(request: DocumentInput, chunk_count: int) -> int:
        """Chunks each extraction activity takes: the request's, but never so many that
        fewer activities than the window could run at once (a short document's chunks are
        asked in parallel, as with one chunk per activity)."""
        workflow.deprecate_patch(EXTRACT_GROUPS_PATCH)
        return max(1, min(request.chunks_per_activity, -(-chunk_count // request.extract_window)))

    async def _extract(self, whole: ExtractRangeInput) -> None:
        if whole.end <= SEGMENT_CHUNKS:
            await _extract_range(whole, self._chunks_done, before_each=self._unpaused)
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

    def _chunks_done(self, summary: ExtractSummary) -> None:
        self._done += summary.chunk_count
        if summary.fallback:
            self._fallbacks.append(summary.fallback)

    async def _unpaused(self) -> None:
        await workflow.wait_condition(lambda: not self.steps.paused)

    @workflow.query
    def status(self) -> DocumentStatus:
        """Current step and chunks done / total; the step runner's plan, steps and timings."""
        steps = self.steps.status()
        state = "paused" if self._state == "running" and self.steps.paused else self._state
        return DocumentStatus(
            **steps.model_dump(exclude={"state", "current_step", "done", "total"}),
            document_id=self._document_id,
            state=state,
            current_step=self._step,
            done=self._done,
            total=self._total,
        )
