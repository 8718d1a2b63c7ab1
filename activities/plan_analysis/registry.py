"""The risk registry: nine built-in risks, plus a user's YAML or TOML file.

A file holds ``risks: [ {id, name, category, severity, stages, mitigation, errors, detect}, ...]``;
an entry whose id is a default's replaces it. Every entry is validated when the run starts
(:func:`load_registry`), and a bad one is refused with an error naming the file and the
entry, so a typo never surfaces halfway through an analysis.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pydantic
import yaml

from sagaworks import validation_error
from sagaworks.contracts.plans import STAGES, Condition, Risk, RiskRegistry


def _risk(**fields: Any) -> Risk:
    return Risk.model_validate(fields, strict=False)


DEFAULT_RISKS: tuple[Risk, ...] = (
    _risk(
        id="PDF_CORRUPT",
        name="The PDF cannot be read",
        category="DATA_QUALITY",
        severity="CRITICAL",
        stages=("load", "extract"),
        mitigation="retry_with_backup",
        errors=("PdfCorrupt",),
    ),
    _risk(
        id="EMPTY_EXTRACTION",
        name="Pages without a text layer (scanned)",
        category="DATA_QUALITY",
        severity="HIGH",
        stages=("extract",),
        mitigation="fallback_ocr",
        errors=("EmptyExtraction",),
        detect=(Condition(metric="pages_without_text", op=">", value=0),),
    ),
    _risk(
        id="NLP_MODEL_MISSING",
        name="The NLP model is not installed",
        category="EXTERNAL_DEPENDENCY",
        severity="CRITICAL",
        stages=("semantic", "causal"),
        mitigation="download_model",
        errors=("NlpModelMissing",),
    ),
    _risk(
        id="INSUFFICIENT_TEXT",
        name="Too little text to analyse with confidence",
        category="DATA_QUALITY",
        severity="MEDIUM",
        stages=("semantic", "causal"),
        mitigation="reduce_confidence_threshold",
        errors=("InsufficientText",),
        detect=(Condition(metric="text_chars", op="<", value=3000),),
    ),
    _risk(
        id="MEMORY_EXHAUSTION",
        name="The stage ran out of memory",
        category="RESOURCE_EXHAUSTION",
        severity="HIGH",
        stages=STAGES,
        mitigation="batch_processing",
        errors=("MemoryExhaustion",),
        detect=(Condition(metric="pages", op=">", value=400),),
    ),
    _risk(
        id="TIMEOUT",
        name="The stage did not finish in time, or its breaker is open",
        category="COMPUTATION_ERROR",
        severity="MEDIUM",
        stages=STAGES,
        mitigation="reduce_scope",
        errors=("StageTimeout", "CircuitOpen"),
    ),
    _risk(
        id="DNP_VALIDATION_FAIL",
        name="Programmes miss DNP-required fields",
        category="VALIDATION_FAILURE",
        severity="LOW",
        stages=("dnp",),
        mitigation="log_and_continue",
        errors=("DnpValidationFailed",),
        detect=(Condition(metric="indicator_gap", op=">", value=0),),
    ),
    _risk(
        id="MISSING_FINANCIAL_DATA",
        name="No investment table found",
        category="DATA_QUALITY",
        severity="MEDIUM",
        stages=("financial",),
        mitigation="estimate_from_text",
        errors=("MissingFinancialData",),
        detect=(Condition(metric="tables", op="<", value=1),),
    ),
    _risk(
        id="EMPTY_CAUSAL_GRAPH",
        name="No causal links found",
        category="COMPUTATION_ERROR",
        severity="HIGH",
        stages=("causal",),
        mitigation="lower_extraction_threshold",
        errors=("EmptyCausalGraph",),
        detect=(Condition(metric="goals", op="<", value=1),),
    ),
)
"""The nine built-in risks, each with its severity, the stages it concerns, its mitigation,
the errors it explains and the metrics that detect it before a stage."""


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise validation_error(
            f"not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {err}", field=str(path)
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("risks"), list):
        raise validation_error("expected a top-level 'risks' list", field=str(path))
    return data


def _entry_name(entry: Any, index: int) -> str:
    name = entry.get("id") if isinstance(entry, dict) else None
    return f"risks[{index}]" + (f" ({name})" if isinstance(name, str) else "")


def load_registry(risk_file: str | None) -> RiskRegistry:
    """The defaults, extended (or overridden by id) with the risks of ``risk_file``.

    Raises a non-retryable ``ValidationError`` naming the file, the entry and the field.
    """
    risks = {risk.id: risk for risk in DEFAULT_RISKS}
    if risk_file:
        path = Path(risk_file)
        if path.suffix.lower() not in (".yaml", ".yml", ".toml"):
            raise validation_error("a risk file is .yaml, .yml or .toml", field=risk_file)
        if not path.is_file():
            raise validation_error("risk file not found", field=risk_file)
        for index, entry in enumerate(_read(path)["risks"]):
            try:
                risk = Risk.model_validate(entry, strict=False)
            except pydantic.ValidationError as err:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in err.errors()
                )
                raise validation_error(f"{_entry_name(entry, index)}: {problems}", field=risk_file) from None
            risks[risk.id] = risk
    return RiskRegistry(risks=tuple(risks.values()))
