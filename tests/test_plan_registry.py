"""The risk registry: the nine built-in risks, user files in YAML and TOML, and every way a file
can be wrong, each refused naming the file and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from sagaworks.activities.db import Database
from sagaworks.activities.errors import ErrorClass
from sagaworks.activities.plan_analysis.registry import DEFAULT_RISKS, load_registry
from sagaworks.contracts.plans import MITIGATION_OPTIONS, MITIGATION_STRATEGIES, StageOptions
from tests.plans import failure_of, make_plan, plan_settings, plan_worker, run_plan

BUILT_IN = {
    "PDF_CORRUPT": ("CRITICAL", "retry_with_backup"),
    "EMPTY_EXTRACTION": ("HIGH", "fallback_ocr"),
    "NLP_MODEL_MISSING": ("CRITICAL", "download_model"),
    "INSUFFICIENT_TEXT": ("MEDIUM", "reduce_confidence_threshold"),
    "MEMORY_EXHAUSTION": ("HIGH", "batch_processing"),
    "TIMEOUT": ("MEDIUM", "reduce_scope"),
    "DNP_VALIDATION_FAIL": ("LOW", "log_and_continue"),
    "MISSING_FINANCIAL_DATA": ("MEDIUM", "estimate_from_text"),
    "EMPTY_CAUSAL_GRAPH": ("HIGH", "lower_extraction_threshold"),
}


def test_the_defaults_are_the_nine_built_in_risks() -> None:
    assert {r.id: (r.severity, r.mitigation) for r in DEFAULT_RISKS} == BUILT_IN
    assert load_registry(None).risks == DEFAULT_RISKS
    # Every strategy is a branch of the stage code: its options validate.
    assert set(MITIGATION_OPTIONS) == set(MITIGATION_STRATEGIES)
    for changes in MITIGATION_OPTIONS.values():
        StageOptions.model_validate(changes)


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD_YAML = """
risks:
  - id: SHORT_PLAN
    name: A plan of fewer than three pages
    category: DATA_QUALITY
    severity: MEDIUM
    stages: [semantic]
    mitigation: reduce_confidence_threshold
    detect: [{metric: pages, op: "<", value: 3}]
  - id: TIMEOUT
    name: Overridden timeout
    category: COMPUTATION_ERROR
    severity: HIGH
    stages: [load]
    mitigation: reduce_scope
"""


def test_a_yaml_file_adds_and_overrides_risks(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, "risks.yaml", GOOD_YAML))
    assert len(registry.risks) == 10
    assert registry.get("SHORT_PLAN").detect[0].holds({"pages": 1})
    assert registry.get("TIMEOUT").severity == "HIGH" and registry.get("TIMEOUT").stages == ("load",)


def test_a_toml_file_is_read_too(tmp_path: Path) -> None:
    text = """
[[risks]]
id = "NO_RESPONSIBLE"
name = "Programmes without a responsible office"
category = "VALIDATION_FAILURE"
severity = "LOW"
stages = ["dnp"]
mitigation = "log_and_continue"
errors = ["DnpValidationFailed"]
"""
    registry = load_registry(_write(tmp_path, "risks.toml", text))
    assert registry.get("NO_RESPONSIBLE").errors == ("DnpValidationFailed",)


BAD_ENTRIES = [
    ("mitigation: pray", "risks[0] (MY_RISK): mitigation: Value error, unknown mitigation strategy 'pray'"),
    ("severity: SEVERE", "risks[0] (MY_RISK): severity:"),
    ("stages: [ingest]", "risks[0] (MY_RISK): stages.0:"),
    ("detect: [{metric: pages, op: '=~', value: 3}]", "risks[0] (MY_RISK): detect.0.op:"),
    ("colour: red", "risks[0] (MY_RISK): colour: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("change", "expected"), BAD_ENTRIES, ids=[c for c, _ in BAD_ENTRIES])
def test_a_bad_entry_is_refused_naming_the_file_and_entry(tmp_path: Path, change: str, expected: str) -> None:
    base = {"mitigation": "log_and_continue", "severity": "LOW", "stages": "[dnp]"}
    key = change.split(":")[0]
    fields = {**base, key: change.split(":", 1)[1].strip()}
    lines = "\n".join(f"    {k}: {v}" for k, v in fields.items())
    path = _write(
        tmp_path, "risks.yaml", f"risks:\n  - id: MY_RISK\n    name: Mine\n    category: DATA_QUALITY\n{lines}\n"
    )
    with pytest.raises(ApplicationError) as refused:
        load_registry(path)
    assert refused.value.type == ErrorClass.VALIDATION and refused.value.non_retryable
    assert refused.value.message.startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("risks.yaml", "risks: [\n", "not valid YAML"),
        ("risks.toml", "risks = [", "not valid TOML"),
        ("risks.yaml", "- id: X\n", "expected a top-level 'risks' list"),
        ("risks.json", "{}", "a risk file is .yaml, .yml or .toml"),
        (
            "risks.yaml",
            "risks:\n  - {id: lower, name: x, category: DATA_QUALITY, "
            "severity: LOW, stages: [dnp], mitigation: log_and_continue}\n",
            "risks[0] (lower): id: Value error, a risk id is UPPER_SNAKE_CASE",
        ),
        (
            "risks.yaml",
            "risks:\n  - {id: PDF_CORRUPT, name: x, category: DATA_QUALITY, "
            "severity: LOW, stages: [], mitigation: log_and_continue}\n",
            "risks[0] (PDF_CORRUPT): stages: Tuple should have at least 1 item",
        ),
    ],
)
def test_a_bad_file_is_refused(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ApplicationError) as refused:
        load_registry(path)
    assert expected in refused.value.message and path in refused.value.message


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApplicationError, match="risk file not found"):
        load_registry(str(tmp_path / "nope.yaml"))


async def test_a_run_with_a_bad_registry_fails_before_any_stage(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "risks.yaml",
        "risks:\n  - {id: MY_RISK, name: x, category: DATA_QUALITY, severity: LOW, stages: [dnp], mitigation: pray}\n",
    )
    async with plan_worker(dev_client, db, task_queue, plan_settings(tmp_path)):
        handle, cause = await failure_of(dev_client, task_queue, make_plan("plan-bueno", risk_file=path))
        assert (
            cause.type == ErrorClass.VALIDATION and "risks[0] (MY_RISK)" in cause.message and "'pray'" in cause.message
        )
        history = await handle.fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert scheduled == ["prepare_plan"]

        # A user's risk takes part like a default: detected before its stage, alerted.
        good = _write(tmp_path, "good.yaml", GOOD_YAML)
        result = await run_plan(dev_client, task_queue, make_plan("plan-breve", risk_file=good))
        assert ("WARNING", "SHORT_PLAN") in [(a.level, a.risk_id) for a in result.alerts]
        assert "SHORT_PLAN" in result.stages[2].assessment.detected
