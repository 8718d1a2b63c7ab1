"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.
"""

# --- The step runner, the Saga helper and their payloads -----------------------------------
# Imported on first use (PEP 562): ``import sagaworks`` stays cheap for the CLI, and the
# temporalio.workflow modules load only in processes that run or replay workflows.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagaworks import policies
    from sagaworks._concurrency import run_to_completion, run_windowed
    from sagaworks._models import (
        RESTART_MEMO,
        CompensationRecord,
        ProgressStatus,
        RunState,
        SagaReport,
        StepsRestart,
        StepStatus,
        StepTiming,
        restart_result_key,
    )
    from sagaworks._pause import Pausable
    from sagaworks._saga import SAGA_ERROR_TYPES, Saga, SagaState, error_class, reported_error
    from sagaworks._steps import Steps, StepWorkflow
    from sagaworks.policies import ActivityOptions

_STEP_EXPORTS = {
    "ActivityOptions": "sagaworks.policies",
    "CompensationRecord": "sagaworks._models",
    "Pausable": "sagaworks._pause",
    "ProgressStatus": "sagaworks._models",
    "RESTART_MEMO": "sagaworks._models",
    "RunState": "sagaworks._models",
    "SAGA_ERROR_TYPES": "sagaworks._saga",
    "Saga": "sagaworks._saga",
    "SagaReport": "sagaworks._models",
    "SagaState": "sagaworks._saga",
    "StepStatus": "sagaworks._models",
    "StepTiming": "sagaworks._models",
    "StepWorkflow": "sagaworks._steps",
    "Steps": "sagaworks._steps",
    "StepsRestart": "sagaworks._models",
    "error_class": "sagaworks._saga",
    "reported_error": "sagaworks._saga",
    "restart_result_key": "sagaworks._models",
    "run_to_completion": "sagaworks._concurrency",
    "run_windowed": "sagaworks._concurrency",
}

__all__ = ["policies", *_STEP_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _STEP_EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_STEP_EXPORTS[name]), name)
        globals()[name] = value  # once: later lookups do not come back here
        return value
    if name == "policies":
        import importlib

        return importlib.import_module("sagaworks.policies")
    raise AttributeError(f"module 'sagaworks' has no attribute {name!r}")
# --- end of the step runner's exports ------------------------------------------------------
