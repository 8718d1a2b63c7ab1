"""sagaworks: durable sagas and LLM/data pipelines on Temporal.

What a team writes its own workflows with (see the README's "Your own saga"): the step runner
(:class:`StepWorkflow`, :class:`Steps`) and the :class:`Saga` helper, approvals
(:class:`Approval`), circuit breakers with fallbacks (:func:`guarded`), the exactly-once store
(:func:`apply_once`, :func:`undo_once`, :func:`seal_once`), the LLM gateway (:class:`LLM`:
providers, a requests and tokens budget across workers, the ``llm`` breaker, fallbacks),
retry and timeout policies
(:mod:`sagaworks.policies`), and the :class:`Family` a project registers under the
``sagaworks.families`` entry point so that the worker, the ``saga`` CLI, the HTTP API and the
console serve it.

The repository's ``workflows/``, ``activities/``, ``client/``, ``contracts/`` and
``mcp_servers/`` folders are installed as subpackages of this one import name
(``sagaworks.workflows``...), so a project of its own with a ``workflows.py`` or an
``activities.py`` never collides with them.
"""

# Every public name is imported on first use (PEP 562): ``import sagaworks`` (every CLI
# command does) costs neither the Temporal SDK nor SQLAlchemy, and workflow-side modules load
# only in processes that run or replay workflows.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Explicit re-exports (``X as X``): the public names type checkers see.
    from sagaworks import policies as policies
    from sagaworks._approval import (
        APPROVAL_REFUSED as APPROVAL_REFUSED,
    )
    from sagaworks._approval import (
        APPROVAL_SEARCH_ATTRIBUTE as APPROVAL_SEARCH_ATTRIBUTE,
    )
    from sagaworks._approval import (
        Approval as Approval,
    )
    from sagaworks._approval import (
        ApprovalAnswer as ApprovalAnswer,
    )
    from sagaworks._approval import (
        ApprovalDecision as ApprovalDecision,
    )
    from sagaworks._approval import (
        ApprovalOutcome as ApprovalOutcome,
    )
    from sagaworks._approval import (
        ApprovalProgress as ApprovalProgress,
    )
    from sagaworks._approval import (
        ApprovalState as ApprovalState,
    )
    from sagaworks._approval import (
        ApprovalUpdates as ApprovalUpdates,
    )
    from sagaworks._approval import (
        Escalated as Escalated,
    )
    from sagaworks._approval import (
        Escalation as Escalation,
    )
    from sagaworks._breakers import (
        BreakerConfig as BreakerConfig,
    )
    from sagaworks._breakers import (
        Breakers as Breakers,
    )
    from sagaworks._breakers import (
        breaker_config as breaker_config,
    )
    from sagaworks._breakers import (
        breaker_env_key as breaker_env_key,
    )
    from sagaworks._breakers import (
        breaker_statuses as breaker_statuses,
    )
    from sagaworks._breakers import (
        read_breaker_statuses as read_breaker_statuses,
    )
    from sagaworks._circuit import (
        CIRCUIT_OPEN as CIRCUIT_OPEN,
    )
    from sagaworks._circuit import (
        Guarded as Guarded,
    )
    from sagaworks._circuit import (
        guarded as guarded,
    )
    from sagaworks._circuit import (
        open_breaker as open_breaker,
    )
    from sagaworks._concurrency import (
        run_to_completion as run_to_completion,
    )
    from sagaworks._concurrency import (
        run_windowed as run_windowed,
    )
    from sagaworks._db import Base as Base
    from sagaworks._db import (
        Database as Database,
    )
    from sagaworks._db import (
        database_url as database_url,
    )
    from sagaworks._llm import (
        LLM as LLM,
    )
    from sagaworks._llm import (
        LLMAnswer as LLMAnswer,
    )
    from sagaworks._llm import (
        LLMConfigError as LLMConfigError,
    )
    from sagaworks._llm import (
        LLMReply as LLMReply,
    )
    from sagaworks._llm import (
        LLMSettings as LLMSettings,
    )
    from sagaworks._llm import (
        llm_budget_from_env as llm_budget_from_env,
    )
    from sagaworks._llm import (
        llm_settings_from_env as llm_settings_from_env,
    )
    from sagaworks._llm_budget import (
        LLMBudget as LLMBudget,
    )
    from sagaworks._models import (
        RESTART_MEMO as RESTART_MEMO,
    )
    from sagaworks._models import (
        CompensationRecord as CompensationRecord,
    )
    from sagaworks._models import (
        ProgressStatus as ProgressStatus,
    )
    from sagaworks._models import (
        RunState as RunState,
    )
    from sagaworks._models import (
        SagaReport as SagaReport,
    )
    from sagaworks._models import (
        StepsRestart as StepsRestart,
    )
    from sagaworks._models import (
        StepStatus as StepStatus,
    )
    from sagaworks._models import (
        StepTiming as StepTiming,
    )
    from sagaworks._models import (
        restart_result_key as restart_result_key,
    )
    from sagaworks._pause import (
        UPDATE_REFUSED as UPDATE_REFUSED,
    )
    from sagaworks._pause import (
        Pausable as Pausable,
    )
    from sagaworks._pause import (
        refusal as refusal,
    )
    from sagaworks._registry import (
        ApprovalDeclaration as ApprovalDeclaration,
    )
    from sagaworks._registry import (
        DemoRun as DemoRun,
    )
    from sagaworks._registry import (
        DemoUpdate as DemoUpdate,
    )
    from sagaworks._registry import (
        Family as Family,
    )
    from sagaworks._registry import (
        Registry as Registry,
    )
    from sagaworks._registry import (
        RunRefused as RunRefused,
    )
    from sagaworks._registry import (
        WorkerResources as WorkerResources,
    )
    from sagaworks._registry import (
        lazy as lazy,
    )
    from sagaworks._registry import (
        registry as registry,
    )
    from sagaworks._saga import (
        SAGA_ERROR_TYPES as SAGA_ERROR_TYPES,
    )
    from sagaworks._saga import (
        Saga as Saga,
    )
    from sagaworks._saga import (
        SagaState as SagaState,
    )
    from sagaworks._saga import (
        error_class as error_class,
    )
    from sagaworks._saga import (
        error_kind as error_kind,
    )
    from sagaworks._saga import (
        failure_text as failure_text,
    )
    from sagaworks._saga import (
        outlived_failure as outlived_failure,
    )
    from sagaworks._saga import (
        reported_error as reported_error,
    )
    from sagaworks._steps import (
        Steps as Steps,
    )
    from sagaworks._steps import (
        StepWorkflow as StepWorkflow,
    )
    from sagaworks._store import (
        DONE as DONE,
    )
    from sagaworks._store import (
        UNDONE as UNDONE,
    )
    from sagaworks._store import (
        StepAlreadyCompensated as StepAlreadyCompensated,
    )
    from sagaworks._store import (
        StepOwnedByAnotherRun as StepOwnedByAnotherRun,
    )
    from sagaworks._store import (
        StepRecord as StepRecord,
    )
    from sagaworks._store import (
        apply_once as apply_once,
    )
    from sagaworks._store import (
        seal_once as seal_once,
    )
    from sagaworks._store import (
        undo_once as undo_once,
    )
    from sagaworks.activities.errors import (
        ErrorClass as ErrorClass,
    )
    from sagaworks.activities.errors import (
        attempts_since as attempts_since,
    )
    from sagaworks.activities.errors import (
        bugs_retried as bugs_retried,
    )
    from sagaworks.activities.errors import (
        database_errors as database_errors,
    )
    from sagaworks.activities.errors import (
        error as error,
    )
    from sagaworks.activities.errors import (
        validation_error as validation_error,
    )
    from sagaworks.activities.liveness import (
        keep_alive as keep_alive,
    )
    from sagaworks.contracts.breakers import (
        BreakerStatus as BreakerStatus,
    )
    from sagaworks.contracts.common import (
        StageResume as StageResume,
    )
    from sagaworks.contracts.common import (
        StrictData as StrictData,
    )
    from sagaworks.contracts.common import (
        StrictModel as StrictModel,
    )
    from sagaworks.contracts.common import (
        Text as Text,
    )
    from sagaworks.contracts.common import (
        text_key as text_key,
    )
    from sagaworks.contracts.fallback import (
        BranchOutcome as BranchOutcome,
    )
    from sagaworks.policies import (
        ActivityOptions as ActivityOptions,
    )
    from sagaworks.workflows.cpu import (
        cpu_queue as cpu_queue,
    )
    from sagaworks.workflows.cpu import (
        current_cpu_queue as current_cpu_queue,
    )
    from sagaworks.workflows.fallback import (
        with_fallback as with_fallback,
    )
    from sagaworks.workflows.mcp import (
        McpTools as McpTools,
    )

_EXPORTS: dict[str, str] = {
    "StepWorkflow": "sagaworks._steps",
    "Steps": "sagaworks._steps",
    "SAGA_ERROR_TYPES": "sagaworks._saga",
    "Saga": "sagaworks._saga",
    "SagaState": "sagaworks._saga",
    "error_class": "sagaworks._saga",
    "error_kind": "sagaworks._saga",
    "failure_text": "sagaworks._saga",
    "outlived_failure": "sagaworks._saga",
    "reported_error": "sagaworks._saga",
    "RESTART_MEMO": "sagaworks._models",
    "CompensationRecord": "sagaworks._models",
    "ProgressStatus": "sagaworks._models",
    "RunState": "sagaworks._models",
    "SagaReport": "sagaworks._models",
    "StepStatus": "sagaworks._models",
    "StepTiming": "sagaworks._models",
    "StepsRestart": "sagaworks._models",
    "restart_result_key": "sagaworks._models",
    "UPDATE_REFUSED": "sagaworks._pause",
    "Pausable": "sagaworks._pause",
    "refusal": "sagaworks._pause",
    "run_to_completion": "sagaworks._concurrency",
    "run_windowed": "sagaworks._concurrency",
    "ActivityOptions": "sagaworks.policies",
    "APPROVAL_REFUSED": "sagaworks._approval",
    "APPROVAL_SEARCH_ATTRIBUTE": "sagaworks._approval",
    "Approval": "sagaworks._approval",
    "ApprovalAnswer": "sagaworks._approval",
    "ApprovalDecision": "sagaworks._approval",
    "ApprovalOutcome": "sagaworks._approval",
    "ApprovalProgress": "sagaworks._approval",
    "ApprovalState": "sagaworks._approval",
    "ApprovalUpdates": "sagaworks._approval",
    "Escalated": "sagaworks._approval",
    "Escalation": "sagaworks._approval",
    "BreakerConfig": "sagaworks._breakers",
    "Breakers": "sagaworks._breakers",
    "breaker_config": "sagaworks._breakers",
    "breaker_env_key": "sagaworks._breakers",
    "breaker_statuses": "sagaworks._breakers",
    "read_breaker_statuses": "sagaworks._breakers",
    "CIRCUIT_OPEN": "sagaworks._circuit",
    "Guarded": "sagaworks._circuit",
    "guarded": "sagaworks._circuit",
    "open_breaker": "sagaworks._circuit",
    "Database": "sagaworks._db",
    "database_url": "sagaworks._db",
    "BreakerStatus": "sagaworks.contracts.breakers",
    "Base": "sagaworks._db",
    "ErrorClass": "sagaworks.activities.errors",
    "attempts_since": "sagaworks.activities.errors",
    "bugs_retried": "sagaworks.activities.errors",
    "database_errors": "sagaworks.activities.errors",
    "error": "sagaworks.activities.errors",
    "keep_alive": "sagaworks.activities.liveness",
    "validation_error": "sagaworks.activities.errors",
    "StageResume": "sagaworks.contracts.common",
    "StrictData": "sagaworks.contracts.common",
    "StrictModel": "sagaworks.contracts.common",
    "Text": "sagaworks.contracts.common",
    "text_key": "sagaworks.contracts.common",
    "cpu_queue": "sagaworks.workflows.cpu",
    "current_cpu_queue": "sagaworks.workflows.cpu",
    "BranchOutcome": "sagaworks.contracts.fallback",
    "with_fallback": "sagaworks.workflows.fallback",
    "McpTools": "sagaworks.workflows.mcp",
    "LLM": "sagaworks._llm",
    "LLMAnswer": "sagaworks._llm",
    "LLMConfigError": "sagaworks._llm",
    "LLMReply": "sagaworks._llm",
    "LLMSettings": "sagaworks._llm",
    "llm_budget_from_env": "sagaworks._llm",
    "llm_settings_from_env": "sagaworks._llm",
    "LLMBudget": "sagaworks._llm_budget",
    "DONE": "sagaworks._store",
    "UNDONE": "sagaworks._store",
    "StepAlreadyCompensated": "sagaworks._store",
    "StepOwnedByAnotherRun": "sagaworks._store",
    "StepRecord": "sagaworks._store",
    "apply_once": "sagaworks._store",
    "seal_once": "sagaworks._store",
    "undo_once": "sagaworks._store",
    "ApprovalDeclaration": "sagaworks._registry",
    "DemoRun": "sagaworks._registry",
    "DemoUpdate": "sagaworks._registry",
    "Family": "sagaworks._registry",
    "Registry": "sagaworks._registry",
    "RunRefused": "sagaworks._registry",
    "WorkerResources": "sagaworks._registry",
    "lazy": "sagaworks._registry",
    "registry": "sagaworks._registry",
}
"""Public name -> the private module that defines it."""

__all__ = ["policies", *_EXPORTS]


def __getattr__(name: str) -> Any:
    import importlib

    if name == "policies":
        return importlib.import_module("sagaworks.policies")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sagaworks' has no attribute {name!r}")
    # __import__, not importlib.import_module: inside the workflow sandbox it is the
    # sandbox's import, so a name asked for under ``imports_passed_through`` comes from the
    # module the contracts (passed through too) use, not from a copy of its own (a model
    # of the copy would not validate as the contracts' model).
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
