"""Contracts shared by every workflow family."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

NO_CONTROL_CHARACTERS = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
"""The :data:`Text` rule as a JSON Schema pattern: no C0 control character but tab, newline
and carriage return, no DEL, no C1 control character (Unicode category Cc)."""


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError("control characters (U+0000-U+001F but tab and newlines, U+007F-U+009F) are not allowed")
    return value


class _DocumentedNoControlCharacters:
    """Puts the rule in the JSON Schema, so what a client reads in ``/openapi.json`` is what
    the validator refuses: :data:`NO_CONTROL_CHARACTERS` with the field's length bounds in
    it (a generator then draws lengths in range). A field with its own ``pattern`` keeps it
    alone: that pattern must refuse control characters itself (tests/test_api_conformance.py
    checks each), since two patterns are costly to satisfy at once."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        if "pattern" not in json_schema:
            least, most = json_schema.get("minLength", 0), json_schema.get("maxLength", "")
            json_schema["pattern"] = NO_CONTROL_CHARACTERS.replace("]*$", f"]{{{least},{most}}}$")
        return json_schema


Text = Annotated[str, AfterValidator(_no_control_characters), _DocumentedNoControlCharacters()]
"""A string input field: no control characters (Unicode category Cc: NUL, ESC, DEL, the C1
range...) but tab, newline and carriage return; documented as a pattern in the JSON Schema."""


def text_key(*parts: str) -> str:
    """A short stable digest of texts: runs of the same input share a workflow id."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _integral_float_as_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _accepting_integral_floats(schema: Any) -> None:
    """Wrap every ``int`` schema under ``schema`` (in place) so that it takes a float with no
    fraction (``3.0``) as the integer it is, as JSON Schema's ``integer`` does."""
    if isinstance(schema, list):
        for item in schema:
            _accepting_integral_floats(item)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if isinstance(value, dict) and value.get("type") == "int":
            schema[key] = core_schema.no_info_before_validator_function(_integral_float_as_int, value)
        elif not (
            isinstance(value, dict)
            and value.get("type") == "function-before"
            and value.get("function", {}).get("function") is _integral_float_as_int
        ):
            _accepting_integral_floats(value)


class StrictData(BaseModel):
    """A model validated strictly: a wrong type fails with the field named (``false`` is no
    number, ``"3"`` no integer), yet an integer field takes a float without fraction (``3.0``):
    JSON Schema's ``integer`` is any number with a zero fraction, and JSON does not tell the
    two apart. Every model a run's input holds is one, so its schema says what it accepts."""

    model_config = ConfigDict(strict=True)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        # The model's own fields; a nested model's are wrapped by its own class.
        _accepting_integral_floats(schema)
        return schema


class StrictModel(StrictData):
    """A payload that forbids unknown fields, validates strictly (:class:`StrictData`) and
    never changes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StageResume(StrictModel):
    """Where a run restarted before the step runner began, and the outcomes it took over
    from its source run for the stages before ``from_stage``: only read, so that runs
    restarted that way replay (a family's resume model subclasses it with those outcomes).
    Restarts now come from the step runner (``saga restart ID --from STEP``)."""

    from_stage: str
    source_workflow_id: str
    """``workflow_id/run_id`` of the run whose outcomes these are."""
