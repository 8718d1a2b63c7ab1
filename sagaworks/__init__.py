"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.
"""

# Approvals, breakers and the exactly-once store: loaded on first use, so that importing
# sagaworks (every CLI command does) costs neither the Temporal SDK nor SQLAlchemy.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagaworks._approval import (
        APPROVAL_REFUSED,
        APPROVAL_SEARCH_ATTRIBUTE,
        Approval,
        ApprovalAnswer,
        ApprovalDeclaration,
        ApprovalDecision,
        ApprovalOutcome,
        ApprovalProgress,
        ApprovalState,
        ApprovalUpdates,
        Escalated,
        Escalation,
    )
    from sagaworks._breakers import (
        BreakerConfig,
        Breakers,
        breaker_config,
        breaker_env_key,
        breaker_statuses,
        read_breaker_statuses,
    )
    from sagaworks._circuit import CIRCUIT_OPEN, Guarded, guarded, open_breaker
    from sagaworks._db import Database
    from sagaworks._store import (
        DONE,
        UNDONE,
        StepAlreadyCompensated,
        StepOwnedByAnotherRun,
        StepRecord,
        apply_once,
        seal_once,
        undo_once,
    )

_LAZY: dict[str, str] = {
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sagaworks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value
