"""A batch of documents: one child pipeline per document, a bounded number at a time.

The batch runs on the step runner (:class:`sagaworks.StepWorkflow`): its steps are
:data:`~sagaworks.contracts.document.BATCH_STEPS`, ``list`` (one activity: ``saga restart ID
--from process`` reuses the listing) and ``process`` (the children, run as workflow code).
"""

from __future__ import annotations

from collections.abc import Awaitable

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError, is_cancelled_exception
from temporalio.workflow import ContinueAsNewError, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import ErrorClass, StepWorkflow, error_class, policies, reported_error, run_windowed
    from sagaworks.activities.document.activities import DocumentActivities
    from sagaworks.workflows.document import DocumentPipeline
    from sagaworks.contracts.document import (
        BATCH_STEPS,
        BatchInput,
        BatchResult,
        BatchStatus,
        DocumentInput,
        DocumentOutcome,
        document_id_for,
        document_workflow_id,
    )


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class DocumentBatch(StepWorkflow):
    """Process every document of a folder; keep going past rejected or failed ones.

    The history grows with every child, so the batch continues as new once Temporal
    suggests it or ``batch.documents_per_run`` children have started, carrying the documents
    still to do and the outcomes so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self._outcomes: list[DocumentOutcome] = []
        self._total = 0
        self._in_flight = 0
        self._state = "running"

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
        self._outcomes = list(batch.outcomes)
        self._total = batch.total or 0
        async with self.steps.plan(BATCH_STEPS, options=policies.PROCESSING) as steps:
            paths = batch.paths
            if paths is None:  # set when the batch continued as new: listed by its first run
                paths = await steps.run(
                    "list", DocumentActivities.list_documents, batch.folder, describe=lambda found: f"{len(found)} documents"
                )
            return await steps.run_here(
                "process", lambda: self._process_all(batch, paths), describe=lambda r: f"{r.completed} of {r.total} completed"
            )

    async def _process_all(self, batch: BatchInput, paths: list[str]) -> BatchResult:
        self._total = batch.total if batch.total is not None else len(paths)
        started = 0

        def stop() -> bool:
            return started >= batch.documents_per_run or workflow.info().is_continue_as_new_suggested()

        def start(path: str) -> Awaitable[DocumentOutcome]:
            nonlocal started
            started += 1  # counted when started, so stop() sees it before the next start
            return self._process(path, batch)

        remaining = await run_windowed(
            paths, start, window=batch.max_in_flight, on_result=self._outcomes.append,
            before_each=self._unpaused, stop=stop,
        )
        if remaining:
            workflow.continue_as_new(
                batch.model_copy(
                    update={"paths": remaining, "outcomes": self._outcomes, "total": self._total, "paused": self.steps.paused}
                )
            )
        return BatchResult(
            folder=batch.folder,
            total=self._total,
            completed=self._count("COMPLETED"),
            rejected=self._count("REJECTED"),
            failed=self._count("FAILED"),
            canceled=self._count("CANCELED"),
            documents=self._outcomes,
        )

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
            status = "REJECTED" if kind == ErrorClass.VALIDATION else "FAILED"
            message = getattr(reported, "message", None) or str(reported)
            return DocumentOutcome(path=path, workflow_id=workflow_id, status=status, error=f"{kind}: {message}")
        finally:
            self._in_flight -= 1
        return DocumentOutcome(
            path=path, workflow_id=workflow_id, status="COMPLETED", concept_count=result.concept_count
        )

    def _count(self, status: str) -> int:
        return sum(1 for o in self._outcomes if o.status == status)

    async def _unpaused(self) -> None:
        await workflow.wait_condition(lambda: not self.steps.paused)

    @workflow.query
    def status(self) -> BatchStatus:  # type: ignore[override]
        """Documents done / total, in flight, rejected, failed and cancelled; the batch's
        state; the step runner's plan, steps and timings."""
        done = len(self._outcomes)
        state = self._state
        if state == "running":
            state = "completed" if done == self._total else "paused" if self.steps.paused else "running"
        return BatchStatus(
            **self.steps.status().model_dump(exclude={"state", "current_step", "done", "total"}),
            state=state,
            current_step=None,
            done=done,
            total=self._total,
            in_flight=self._in_flight,
            rejected=self._count("REJECTED"),
            failed=self._count("FAILED"),
            canceled=self._count("CANCELED"),
        )
