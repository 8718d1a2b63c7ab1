"""``saga catalog`` and ``saga run FAMILY``: one start command per registered family.

Each family's command is generated from its registry entry: the input comes from a JSON
file (``--input FILE``, ``--input -`` for stdin), a path argument where the family takes
one, and ``--set key=value`` overrides; it is validated here, before anything starts.
Listing the families imports none of their code, nor the Temporal client.
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sagaworks import Family, RunRefused, registry
from sagaworks.client.cli.output import JsonFlag, err, fail, out, print_json, print_rows, report_started, run_async

run_app = typer.Typer(help="Start a workflow of the catalog (see `saga catalog`).", no_args_is_help=True)

InputOption = Annotated[
    str | None, typer.Option("--input", "-i", metavar="FILE", help="JSON file holding the input, or - to read stdin.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override one field: key=value (dotted keys reach nested fields; the value is "
        "JSON unless the field is a string). Repeatable.",
    ),
]
WaitFlag = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Show live progress (a graph run's node updates as they come) and "
        "wait for the result (saying so when no worker polls the task queue).",
    ),
]


def catalog(as_json: JsonFlag = False) -> None:
    """List the workflow families, with the JSON Schema of each input (--json).

    A family whose optional dependencies are not installed is listed as unavailable with
    the command that adds them; an entry point that gives no family is reported on stderr.
    """
    found = registry()
    for broken in found.broken:
        err.print(f"skipped the family entry point {broken.entry}: {broken.error}", markup=False)
    if as_json:
        print_json(
            [
                {
                    "name": f.name,
                    "workflow_type": f.workflow_type,
                    "description": f.description,
                    "signals": list(f.signals),
                    "updates": list(f.updates),
                    "samples": list(f.samples),
                    "input_schema": f.input_schema(),
                }
                for f in found.families
            ]
            + [
                {"name": u.name, "unavailable": f"{u.missing} not installed", "install": u.install}
                for u in found.unavailable
            ]
        )
        return
    for f in found.families:
        out.print(f"[bold]{f.name}[/bold]  ({f.workflow_type})\n  {f.description}")
        for path in f.sample_paths():
            out.print(f"  sample: {_shown(path)}", markup=False)
    for missing in found.unavailable:
        out.print(f"[bold]{missing.name}[/bold]  (unavailable: {missing.missing} not installed)")
        if missing.install:
            out.print(f"  {missing.install}", markup=False)


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it (samples/order.json)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def inventory(as_json: JsonFlag = False) -> None:
    """The sample inventory the worker seeds: the SKUs an order may use, with their stock."""
    from sagaworks.contracts.orders import SAMPLE_INVENTORY

    if as_json:
        print_json([entry.model_dump() for entry in SAMPLE_INVENTORY])
        return
    print_rows(("SKU", "NAME", "STOCK AT FIRST START"), [(e.sku, e.name, str(e.stock)) for e in SAMPLE_INVENTORY])


def _read_input(source: str, fam: Family[Any]) -> dict[str, Any]:
    import pydantic_core

    try:
        text = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as unreadable:
        raise fail(f"{source}: cannot read the input: {unreadable.strerror}", 2) from None
    try:
        # pydantic's parser: the same limits (nesting depth, UTF-8) as the workflow's input.
        data = pydantic_core.from_json(text)
    except ValueError as invalid:
        raise fail(f"{source}: invalid {fam.name} input: not JSON ({invalid})", 2) from None
    if not isinstance(data, dict):
        raise fail(f"{source}: invalid {fam.name} input: expected a JSON object", 2)
    return data


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref and take the non-null side of an optional."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            schema = option
            break
    ref = schema.get("$ref")
    return root["$defs"][ref.rsplit("/", 1)[-1]] if ref else schema


def _child_schema(schema: dict[str, Any], root: dict[str, Any], part: str) -> dict[str, Any]:
    if schema.get("type") == "array":
        return _resolve(schema.get("items", {}), root)
    return _resolve(schema.get("properties", {}).get(part, {}), root)


def apply_sets(data: dict[str, Any], sets: list[str], fam: Family[Any]) -> dict[str, Any]:
    """``data`` with each ``key=value`` override applied (values typed by the schema).

    Dotted keys reach nested fields and list items: ``items.0.quantity=3``.
    """
    root = fam.input_schema()
    for assignment in sets:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise fail(f"--set {assignment!r}: expected key=value", 2)
        parts = key.split(".")
        target: Any = data
        schema = root
        for depth, part in enumerate(parts):
            schema = _child_schema(schema, root, part)
            last = depth == len(parts) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise fail(f"--set {key}: no item {part} in {'.'.join(parts[:depth]) or 'input'}", 2)
                index: Any = int(part)
            elif isinstance(target, dict):
                index = part
                if not last:
                    target.setdefault(part, {})
            else:
                raise fail(f"--set {key}: {'.'.join(parts[:depth])} is not an object or a list", 2)
            if last:
                if schema.get("type") == "string":
                    target[index] = raw
                else:
                    try:
                        target[index] = json.loads(raw)
                    except json.JSONDecodeError:
                        target[index] = raw  # validation names the field if a string is wrong here
            else:
                target = target[index]
    return data


def _path_argument(fam: Family[Any], path: Path) -> tuple[Family[Any], dict[str, Any]]:
    """Check what the client can check of a path argument; a folder may start another family."""
    if not path.exists():
        raise fail(f"{path}: no such file or folder", 2)
    if not (path.is_file() or path.is_dir()):
        raise fail(f"{path}: neither a file nor a folder", 2)
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise fail(f"{path}: not readable", 2)
    target = registry().family(fam.folder_family) if path.is_dir() and fam.folder_family else fam
    if target.path_is_folder != path.is_dir():
        wanted = "a folder" if target.path_is_folder else "a file"
        raise fail(f"{path}: not {wanted}; `saga run {target.name}` takes {wanted}", 2)
    # Made absolute but not resolved: the worker checks symlinks against its document roots.
    return target, {target.path_field or "": os.path.abspath(path)}


def start_family(
    fam: Family[Any], *, path: Path | None, input_source: str | None, sets: list[str], wait: bool, as_json: bool
) -> int:
    """Build, validate and start one run of ``fam``; the exit code."""
    from pydantic import ValidationError

    from sagaworks.client.connection import connect
    from sagaworks.client.runs import RunConflict, start_run

    data = _read_input(input_source, fam) if input_source else {}
    if path is not None:
        fam, from_path = _path_argument(fam, path)
        data.update(from_path)
    data = apply_sets(data, sets, fam)
    source = input_source or "input"
    try:
        arg = fam.parse(data)
    except ValidationError as invalid:
        raise fail(f"{source}: invalid {fam.name} input\n{invalid}", 2) from None

    async def start() -> int:
        client = await connect()
        try:
            handle = await start_run(client, fam, arg)
        except (RunConflict, RunRefused) as refused:
            raise fail(str(refused)) from None
        return await report_started(client, handle, wait=wait, as_json=as_json)

    return run_async(start())


def _command_for(fam: Family[Any]) -> Any:
    if fam.path_field:

        def with_path(
            path: Annotated[
                Path | None,
                typer.Argument(
                    metavar="PATH",
                    help=f"Sets {fam.path_field}, made absolute from the current folder (a relative "
                    f"{fam.path_field} in --input or --set is relative to the worker's first document root).",
                    show_default=False,
                ),
            ] = None,
            input_source: InputOption = None,
            sets: SetOption = None,
            wait: WaitFlag = False,
            as_json: JsonFlag = False,
        ) -> None:
            raise typer.Exit(
                start_family(fam, path=path, input_source=input_source, sets=sets or [], wait=wait, as_json=as_json)
            )

        return with_path

    def without_path(
        input_source: InputOption = None, sets: SetOption = None, wait: WaitFlag = False, as_json: JsonFlag = False
    ) -> None:
        raise typer.Exit(
            start_family(fam, path=None, input_source=input_source, sets=sets or [], wait=wait, as_json=as_json)
        )

    return without_path


for _family in registry().families:
    _help = _family.description
    if _family.folder_family:
        _help += f" A folder starts `{_family.folder_family}` instead."
    run_app.command(_family.name, help=_help)(_command_for(_family))


def _unavailable_command(name: str) -> Any:
    def unavailable() -> None:
        try:
            registry().family(name)
        except KeyError as missing:
            raise fail(str(missing.args[0]), 2) from None

    return unavailable


for _missing in registry().unavailable:
    # Listed, so that `saga run NAME` says what to install rather than "no such command".
    run_app.command(_missing.name, help=f"Unavailable: {_missing.missing} is not installed.")(
        _unavailable_command(_missing.name)
    )
