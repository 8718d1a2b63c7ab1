"""The OpenAPI document says what the API accepts and answers, and the API does so.

No Temporal needed: every request here is refused (or answered) before a run would start.
tests/test_api_fuzz.py sends schemathesis's generated requests to the running API.
"""

from __future__ import annotations

import re
import typing
import unicodedata
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from sagaworks import registry
from sagaworks.client.api import ApiSettings, create_app
from sagaworks.contracts.common import NO_CONTROL_CHARACTERS
from sagaworks.contracts.document import BatchInput
from sagaworks.contracts.iterative import IterativeInput
from sagaworks.contracts.orders import OrderInput

TOKEN = "conformance"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Strings a run carries across continue-as-new that come from the engine, not from a caller:
# documents' own texts and file names (a control character is legal in a Linux file name).
ENGINE_TEXTS = {
    "document-batch": {"DocumentOutcome.path", "DocumentOutcome.workflow_id", "DocumentOutcome.error", "paths"},
    "iterative": {"Hit.document_id", "Hit.path", "Hit.text", "Quality.missing_terms"},
}


@pytest.fixture(scope="module")
def api() -> TestClient:
    return TestClient(create_app(ApiSettings(token=TOKEN), client=object()))  # type: ignore[arg-type]  # the offline app never calls Temporal


@pytest.fixture(scope="module")
def spec(api: TestClient) -> dict[str, Any]:
    return api.get("/openapi.json").json()


def _caller_models(model: type[BaseModel], seen: dict[type[BaseModel], None]) -> None:
    """``model`` and every model its documented fields hold (not the engine's resume point)."""
    if model in seen:
        return
    seen[model] = None
    for field in model.model_fields.values():
        # SkipJsonSchema() instances are what a field's metadata holds, a generic class at run time.
        if any(isinstance(m, SkipJsonSchema) for m in field.metadata) or "SkipJsonSchema" in repr(field.annotation):  # type: ignore[misc]
            continue
        stack: list[Any] = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                _caller_models(tp, seen)
            stack.extend(typing.get_args(tp))


@pytest.mark.parametrize("fam", registry().families, ids=lambda f: f.name)
def test_every_string_a_caller_writes_follows_one_control_character_rule(fam: Any) -> None:
    """One rule for every caller-written string (``query`` and ``current_query`` alike), and
    the schema says it: what the fuzzer draws from the schema is what the validator takes."""
    models: dict[type[BaseModel], None] = {}
    _caller_models(fam.input_model, models)
    lax = [m.__name__ for m in models if not m.model_config.get("strict")]
    assert not lax, f"{fam.name}: models its input holds that read false as 0: {lax}"

    unruled = []
    for model in models:
        for name, prop in model.model_json_schema()["properties"].items():
            label = name if model is fam.input_model else f"{model.__name__}.{name}"
            if label in ENGINE_TEXTS.get(fam.name, set()):
                continue
            for node in _string_nodes(prop):
                if not _refuses_control_characters(node.get("pattern")):
                    unruled.append(label)
    assert not unruled, f"{fam.name}: strings whose schema admits control characters: {unruled}"


def _refuses_control_characters(pattern: str | None) -> bool:
    """The rule's own pattern, or a field's own pattern no control character matches."""
    if pattern is None:
        return False
    if pattern.startswith(NO_CONTROL_CHARACTERS.split("]")[0]):
        return True
    try:
        hypothesis.find(
            st.from_regex(pattern, fullmatch=True),
            _has_control_character,
            settings=hypothesis.settings(max_examples=300, database=None, derandomize=True),
        )
    except hypothesis.errors.NoSuchExample:
        return True
    return False


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text)


def _string_nodes(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [node for item in schema for node in _string_nodes(item)]
    if not isinstance(schema, dict) or "$ref" in schema:
        return []
    found = [schema] if schema.get("type") == "string" and "enum" not in schema and "const" not in schema else []
    return found + [node for value in schema.values() for node in _string_nodes(value)]


@pytest.mark.parametrize("text", ["\x00", "\x1b[31m", "\x7f", "\x8c", "caf\u0085e"])
def test_control_characters_are_refused_in_query_and_current_query_alike(api: TestClient, text: str) -> None:
    for body in ({"query": text}, {"query": "solar", "current_query": text}):
        field = next(iter(body)) if len(body) == 1 else "current_query"
        answer = api.post("/api/workflows/iterative", json=body, headers=AUTH)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["field"] == field and error["message"].startswith(f"{field}: "), error
    assert not re.match(NO_CONTROL_CHARACTERS, text) and re.match(NO_CONTROL_CHARACTERS, "tab\there\r\n")


def test_every_422_names_its_field(api: TestClient) -> None:
    """Fields named like a request location (``query``, ``path``) are named too."""
    for url, body, field in [
        ("/api/workflows/iterative", {"query": ""}, "query"),
        ("/api/workflows/document", {"path": "\x85"}, "path"),
        (
            "/api/workflows/order",
            {**_order(), "items": [{"sku": "A-1", "quantity": 1, "unit_price_cents": True}]},
            "items.0.unit_price_cents",
        ),
        (
            "/api/workflows/routing",
            {"request_id": "r1", "requester": "ann", "text": "x", "escalation": "second-group"},
            "escalation_approvers",
        ),
    ]:
        answer = api.post(url, json=body, headers=AUTH)
        assert answer.status_code == 422 and answer.json()["error"].get("field") == field, (url, answer.text)
        assert all(entry["field"] for entry in answer.json()["errors"]), answer.text
    # A body that is one JSON string (a schedule's pause note) is itself the field.
    note = api.post("/api/schedules/nightly/pause", json="paused \x85 for now", headers=AUTH)
    assert note.status_code == 422 and note.json()["error"]["field"] == "body", note.text


def _order() -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "customer_email": "a@b.example",
        "shipping_address": "1 Road",
        "items": [{"sku": "A-1", "quantity": 1, "unit_price_cents": 100}],
    }


def test_an_integer_may_be_written_as_a_float_without_fraction() -> None:
    """JSON Schema's ``integer`` takes ``1665.0``; a fraction, a bool or a string stays refused."""
    assert IterativeInput.model_validate({"query": "q", "max_iterations": 665.0}).max_iterations == 665
    order = OrderInput.model_validate_json(
        '{"order_id": "o-1", "customer_email": "a@b.example", "shipping_address": "1 Road",'
        ' "items": [{"sku": "A-1", "quantity": 2.0, "unit_price_cents": 100.0}]}'
    )
    assert order.items[0].quantity == 2 and isinstance(order.items[0].quantity, int)
    rounds = [
        {
            "iteration": 1.0,
            "query": "q",
            "hits": 3.0,
            "quality": {"score": 1, "coverage": 1, "diversity": 1, "missing_terms": []},
        }
    ]
    assert IterativeInput.model_validate({"query": "q", "rounds": rounds}).rounds[0].hits == 3
    for bad in (665.5, True, "665"):
        with pytest.raises(ValidationError):
            IterativeInput.model_validate({"query": "q", "max_iterations": bad})


def test_carried_state_refuses_what_its_schema_refuses() -> None:
    """``false`` is no number in a batch's outcomes or a search's best hits."""
    with pytest.raises(ValidationError) as refused:
        BatchInput.model_validate(
            {
                "folder": "docs",
                "outcomes": [
                    {"path": "a.txt", "workflow_id": "document-a", "status": "COMPLETED", "concept_count": False}
                ],
            }
        )
    assert refused.value.errors()[0]["loc"] == ("outcomes", 0, "concept_count")
    best = {
        "iteration": 1,
        "query": "q",
        "quality": {"score": 1, "coverage": 1, "diversity": 1, "missing_terms": []},
        "hits": [{"document_id": "d", "path": "p", "chunk_index": 0, "score": False, "text": "t"}],
    }
    with pytest.raises(ValidationError) as refused:
        IterativeInput.model_validate({"query": "q", "best": best})
    assert refused.value.errors()[0]["loc"] == ("best", "hits", 0, "score")


def test_a_resume_point_is_refused_from_api_callers(api: TestClient) -> None:
    answer = api.post(
        "/api/workflows/blog",
        json={"topic": "tides", "resume": {"from_stage": "write", "source_workflow_id": "blog-x/run"}},
        headers=AUTH,
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "resume", answer.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/api/catalog", "GET"),
        ("PUT", "/api/schedules/nightly", "DELETE, GET"),
        ("DELETE", "/api/workflows/order", "POST"),
        ("PATCH", "/api/workflows/some-run-id", "GET"),
        ("OPTIONS", "/api/workflows/some-run-id/signals/approve", "POST"),
    ],
)
def test_a_405_names_the_methods_the_document_lists(api: TestClient, method: str, path: str, allow: str) -> None:
    answer = api.request(method, path, headers=AUTH)
    assert answer.status_code == 405 and answer.headers.get("allow") == allow, (answer.status_code, answer.headers)


def test_ticket_filters_are_documented_enums(spec: dict[str, Any], api: TestClient) -> None:
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/tickets"]["get"]["parameters"]}
    assert params["priority"]["anyOf"][0]["enum"] == ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    assert "open" in params["state"]["anyOf"][0]["enum"] and "sales_inquiry" in params["type"]["anyOf"][0]["enum"]
    answer = api.get("/api/tickets", params={"priority": "URGENT"}, headers=AUTH)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "priority"


def test_page_token_is_documented_and_an_unknown_one_is_a_page_not_found(spec: dict[str, Any], api: TestClient) -> None:
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/workflows"]["get"]["parameters"]}
    pattern = params["page_token"]["anyOf"][0]["pattern"]
    assert re.match(pattern, "eyJhIjoxfQ") and not re.match(pattern, "[Filtered]")
    assert api.get("/api/workflows", params={"page_token": "[x]"}, headers=AUTH).status_code == 422


def test_a_schedule_documents_each_family_input_as_that_family_validates_it(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["NewSchedule"]
    shapes = {v["properties"]["family"]["const"]: v["properties"]["input"]["$ref"] for v in schema["oneOf"]}
    assert shapes["blog"] == "#/components/schemas/BlogInput" and set(shapes) == {f.name for f in registry().families}
    for ref in shapes.values():
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], ref
    cron = schema["oneOf"][0]["properties"]["cron"]["pattern"]
    assert re.match(cron, "0 7 * * MON") and re.match(cron, "@daily") and not re.match(cron, "99 * * * *")


def test_routings_second_group_rule_is_in_its_schema(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["RoutingInput"]
    assert schema["if"]["properties"]["escalation"] == {"const": "second-group"}
    assert schema["then"]["properties"]["escalation_approvers"] == {"minItems": 1}


def test_the_event_stream_documents_its_events(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/api/workflows/{workflow_id}/events"]["get"]["responses"]["200"]["content"]
    events = content["text/event-stream"]["itemSchema"]["oneOf"]
    assert [e["properties"]["event"]["const"] for e in events] == ["status", "result"]
    assert events[0]["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/RunDescription"}
    assert "failure" in events[1]["properties"]["data"]["contentSchema"]["properties"]


def test_a_schedule_refuses_what_its_schema_refuses(api: TestClient) -> None:
    body = {"family": "blog", "cron": "0 7 * * MON", "input": {"topic": "tides"}}
    cases: list[tuple[dict[str, Any], str]] = [({"paused": 0}, "paused"), ({"family": "nope"}, "family")]
    for bad, field in cases:
        answer = api.post("/api/schedules", json={**body, **bad}, headers=AUTH)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == field, answer.text


def test_a_page_token_carries_a_checksum_so_a_forged_one_never_reaches_temporal(api: TestClient) -> None:
    from sagaworks.client.api.routes_runs import _page_token, page_token_of

    token = page_token_of(b'{"StartTime":"2026-12-02T07:00:00Z","RunID":"r"}')
    assert token and re.match(r"^[A-Za-z0-9_-]+$", token)
    assert _page_token(token) == b'{"StartTime":"2026-12-02T07:00:00Z","RunID":"r"}'
    # No Temporal client here: a forged token answers before any call would be made.
    answer = api.get("/api/workflows", params={"page_token": "Zm9yZ2Vk"}, headers=AUTH)
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "page_token"
