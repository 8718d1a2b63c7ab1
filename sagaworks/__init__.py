"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.
"""

# The step runner, the Saga helper, approvals, breakers and the exactly-once store: loaded on
# first use (PEP 562), so importing sagaworks (every CLI command does) costs neither the
# Temporal SDK nor SQLAlchemy.
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
    # Explicit re-exports (``X as X``): the public names type checkers see.
    from sagaworks._approval import (
        APPROVAL_REFUSED as APPROVAL_REFUSED,
        APPROVAL_SEARCH_ATTRIBUTE as APPROVAL_SEARCH_ATTRIBUTE,
        Approval as Approval,
        ApprovalAnswer as ApprovalAnswer,
        ApprovalDeclaration as ApprovalDeclaration,
        ApprovalDecision as ApprovalDecision,
        ApprovalOutcome as ApprovalOutcome,
        ApprovalProgress as ApprovalProgress,
        ApprovalState as ApprovalState,
        ApprovalUpdates as ApprovalUpdates,
        Escalated as Escalated,
        Escalation as Escalation,
    )
    from sagaworks._breakers import (
        BreakerConfig as BreakerConfig,
        Breakers as Breakers,
        breaker_config as breaker_config,
        breaker_env_key as breaker_env_key,
        breaker_statuses as breaker_statuses,
        read_breaker_statuses as read_breaker_statuses,
    )
    from sagaworks._circuit import (
        CIRCUIT_OPEN as CIRCUIT_OPEN,
        Guarded as Guarded,
        guarded as guarded,
        open_breaker as open_breaker,
    )
    from sagaworks._db import (
        Database as Database,
    )
    from sagaworks._store import (
        DONE as DONE,
        UNDONE as UNDONE,
        StepAlreadyCompensated as StepAlreadyCompensated,
        StepOwnedByAnotherRun as StepOwnedByAnotherRun,
        StepRecord as StepRecord,
        apply_once as apply_once,
        seal_once as seal_once,
        undo_once as undo_once,
    )

_LAZY: dict[str, str] = {
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
    **dict.fromkeys(
        (
            "APPROVAL_REFUSED", "APPROVAL_SEARCH_ATTRIBUTE", "Approval", "ApprovalAnswer", "ApprovalDeclaration",
            "ApprovalDecision", "ApprovalOutcome", "ApprovalProgress", "ApprovalState", "ApprovalUpdates",
            "Escalated", "Escalation",
        ),
        "sagaworks._approval",
    ),
    **dict.fromkeys(
        (
            "BreakerConfig", "Breakers", "breaker_config", "breaker_env_key", "breaker_statuses",
            "read_breaker_statuses",
        ),
        "sagaworks._breakers",
    ),
    **dict.fromkeys(("CIRCUIT_OPEN", "Guarded", "guarded", "open_breaker"), "sagaworks._circuit"),
    "Database": "sagaworks._db",
    **dict.fromkeys(
        (
            "DONE", "UNDONE", "StepAlreadyCompensated", "StepOwnedByAnotherRun", "StepRecord", "apply_once",
            "seal_once", "undo_once",
        ),
        "sagaworks._store",
    ),
}


__all__ = ["policies", *_LAZY]


def __getattr__(name: str) -> Any:
    if name == "policies":
        import importlib

        return importlib.import_module("sagaworks.policies")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sagaworks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value
