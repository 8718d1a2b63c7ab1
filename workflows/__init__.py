"""Workflow definitions: deterministic orchestration only, never I/O.

``WORKFLOWS`` is the registry the worker and the replayer load. It is resolved lazily
because activities import the contracts in this package, and workflows import the
activities they call.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS":
        from workflows.document import DocumentPipeline, ExtractChunksWorkflow
        from workflows.document_batch import DocumentBatch
        from workflows.order import OrderFulfillmentSaga

        return [OrderFulfillmentSaga, DocumentPipeline, ExtractChunksWorkflow, DocumentBatch]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
