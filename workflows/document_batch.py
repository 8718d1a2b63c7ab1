"""A batch of documents: one child pipeline per document, a bounded number at a time.

The folder's listing is stored in the worker's database (``store_listing``) and read a page
at a time (``listing_page``, at most ``LISTING_PAGE_BYTES`` of paths): a folder of
``MAX_BATCH_DOCUMENTS`` long paths is megabytes, more than one history payload may hold.
Batches started before (no ``stored-listing`` marker in their history) read the listing
whole and carry the paths still to do, as they did.

The batch runs on the step runner (:class:`sagaworks.StepWorkflow`): its steps are
:data:`~sagaworks.contracts.document.BATCH_STEPS`, ``list`` (one activity: ``saga restart ID
--from process`` reuses the listing) and ``process`` (the children, run as workflow code).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError, is_cancelled_exception
from temporalio.workflow import ContinueAsNewError, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import ErrorClass, StepWorkflow, error_class, policies, reported_error, run_windowed
    from sagaworks.activities.document.activities import DocumentActivities
    from sagaworks.contracts.document import (
        BATCH_STEPS,
        LISTED_OUTCOME_BYTES,
        BatchInput,
        BatchResult,
        BatchStatus,
        DocumentInput,
        DocumentOutcome,
        DocumentState,
        FinalStatus,
        ListingPage,
        document_id_for,
        document_workflow_id,
    )
    from sagaworks.workflows.document import DocumentPipeline

STORED_LISTING = "stored-listing"
"""The patch that stores the folder's listing instead of returning it whole."""


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class DocumentBatch(StepWorkflow):
    """Process every document of a folder; keep going past rejected or failed ones.

    The history grows with every child, so the batch continues as new once Temporal
    suggests it or ``batch.documents_per_run`` children have started, carrying where it is in
    the stored listing, the counts and the outcomes listed so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self._outcomes: list[DocumentOutcome] = []
        self._counts: Counter[str] = Counter()
        self._not_listed = 0
        self._listed_bytes = 0
        self._total = 0
        self._in_flight = 0
        self._state: DocumentState = "running"

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchResult:
        """Return every document's outcome."""
        if batch.paused:
            self.steps.pause()  # paused when the previous run continued as new
        try:
            return await self._run(batch)
        except BaseException as err:
            if not isinstance(err, ContinueAsNewError):
                self._state = "canceled" if is_cancelled_exception(err) else "failed"
            raise

    async def _run(self, batch: BatchInput) -> BatchResult:
        # Known before the first step: a run continued as new while paused holds before
        # `process` and reports the outcomes it carries.
        self._outcomes = []
        self._counts = Counter(batch.counts) if batch.counts is not None else Counter()
        self._not_listed = batch.outcomes_not_listed
        for outcome in batch.outcomes:
            self._list(outcome, counted=batch.counts is not None)
        self._total = batch.total or 0
        paths, listing = batch.paths, batch.listing
        async with self.steps.plan(BATCH_STEPS, options=policies.PROCESSING) as steps:
            if paths is None and listing is None:  # set when the batch continued as new
                if workflow.patched(STORED_LISTING):
                    stored = await steps.run(
                        "list",
                        DocumentActivities.store_listing,
                        batch.folder,
                        describe=lambda s: f"{s.total} documents",
                    )
                    listing, self._total = stored.listing, stored.total
                else:
                    paths = await steps.run(
                        "list",
                        DocumentActivities.list_documents,
                        batch.folder,
                        describe=lambda found: f"{len(found)} documents",
                    )
            return await steps.run_here(
                "process",
                lambda: self._process_all(batch, paths, listing),
                describe=lambda r: f"{r.completed} of {r.total} completed",
            )

    async def _process_all(self, batch: BatchInput, paths: list[str] | None, listing: str | None) -> BatchResult:
        offset = batch.offset
        if batch.total is not None:
            self._total = batch.total
        elif paths is not None:
            self._total = len(paths)
        started = 0

        def stop() -> bool:
            return started >= batch.documents_per_run or workflow.info().is_continue_as_new_suggested()

        def start(path: str) -> Awaitable[DocumentOutcome]:
            nonlocal started
            started += 1  # counted when started, so stop() sees it before the next start
            return self._process(path, batch)

        def windowed(items: list[str]) -> Awaitable[list[str]]:
            return run_windowed(
                items,
                start,
                window=batch.max_in_flight,
                on_result=self._record,
                before_each=self._unpaused,
                stop=stop,
            )

        if listing is None:
            assert paths is not None
            remaining = await windowed(paths)
            if remaining:
                workflow.continue_as_new(batch.model_copy(update={**self._carried(), "paths": remaining}))
        else:
            while offset < self._total and not stop():
                page = await workflow.execute_activity_method(
                    DocumentActivities.listing_page,
                    ListingPage(listing=listing, offset=offset, limit=batch.documents_per_run - started),
                    summary="listing page",
                    **policies.PROCESSING,
                )
                if not page:
                    break  # the stored listing is shorter than counted: nothing more to do
                offset += len(page) - len(await windowed(page))
            if offset < self._total and stop():
                workflow.continue_as_new(
                    batch.model_copy(update={**self._carried(), "listing": listing, "offset": offset})
                )
        return BatchResult(
            folder=batch.folder,
            total=self._total,
            completed=self._counts["COMPLETED"],
            rejected=self._counts["REJECTED"],
            failed=self._counts["FAILED"],
            canceled=self._counts["CANCELED"],
            documents=self._outcomes,
            documents_not_listed=self._not_listed,
        )

    def _carried(self) -> dict[str, object]:
        """What the next run takes over when the batch continues as new."""
        return {
            "outcomes": self._outcomes,
            "counts": dict(self._counts),
            "outcomes_not_listed": self._not_listed,
            "total": self._total,
            "paused": self.steps.paused,
        }

    def _record(self, outcome: DocumentOutcome) -> None:
        self._list(outcome, counted=False)

    def _list(self, outcome: DocumentOutcome, *, counted: bool) -> None:
        """Count ``outcome`` (unless it was) and list it while the listed outcomes stay within
        ``LISTED_OUTCOME_BYTES``; past it, it is only counted."""
        if not counted:
            self._counts[outcome.status] += 1
        size = len(outcome.path.encode()) + len(outcome.workflow_id) + len((outcome.error or "").encode()) + 80
        if self._listed_bytes + size <= LISTED_OUTCOME_BYTES:
            self._outcomes.append(outcome)
            self._listed_bytes += size
        else:
            self._not_listed += 1

    async def _process(self, path: str, batch: BatchInput) -> DocumentOutcome:
        # The document's own workflow id: one run per document at a time, whoever starts it.
        workflow_id = document_workflow_id(document_id_for(path))
        try:
            request = DocumentInput(
                path=path, chunk_size=batch.chunk_size, chunks_per_activity=batch.chunks_per_activity
            )
        except pydantic.ValidationError as invalid:
            # A file name no input may carry (a control character is legal on Linux):
            # that document is rejected, the batch goes on.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
            return DocumentOutcome(
                path=path, workflow_id=workflow_id, status="REJECTED", error=f"{ErrorClass.VALIDATION}: {problems}"
            )
        self._in_flight += 1
        try:
            result = await workflow.execute_child_workflow(
                DocumentPipeline.run,
                request,
                id=workflow_id,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
            )
        except WorkflowAlreadyStartedError:
            return DocumentOutcome(
                path=path, workflow_id=workflow_id, status="FAILED", error="already being processed by another run"
            )
        except ChildWorkflowError as err:
            if is_cancelled_exception(err):
                return DocumentOutcome(path=path, workflow_id=workflow_id, status="CANCELED")
            kind, reported = error_class(err), reported_error(err)
            status: FinalStatus = "REJECTED" if kind == ErrorClass.VALIDATION else "FAILED"
            message = getattr(reported, "message", None) or str(reported)
            return DocumentOutcome(path=path, workflow_id=workflow_id, status=status, error=f"{kind}: {message}")
        finally:
            self._in_flight -= 1
        return DocumentOutcome(
            path=path, workflow_id=workflow_id, status="COMPLETED", concept_count=result.concept_count
        )

    async def _unpaused(self) -> None:
        await workflow.wait_condition(lambda: not self.steps.paused)

    @workflow.query
    def status(self) -> BatchStatus:
        """Documents done / total, in flight, rejected, failed and cancelled; the batch's
        state; the step runner's plan, steps and timings."""
        done = sum(self._counts.values())
        state: DocumentState = self._state
        if state == "running":
            state = "completed" if done == self._total else "paused" if self.steps.paused else "running"
        return BatchStatus(
            **self.steps.status().model_dump(exclude={"state", "current_step", "done", "total"}),
            state=state,
            current_step=None,
            done=done,
            total=self._total,
            in_flight=self._in_flight,
            rejected=self._counts["REJECTED"],
            failed=self._counts["FAILED"],
            canceled=self._counts["CANCELED"],
        )
