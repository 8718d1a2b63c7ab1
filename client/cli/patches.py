"""``saga patches``: the patch ids in the workflow code and the open runs that may need each."""

from __future__ import annotations

from typing import Annotated

import typer

from sagaworks.client.cli.output import fail, print_json, run_async


def patches(
    family_name: Annotated[
        str | None, typer.Option("--family", metavar="FAMILY", help="Only this family's patches.")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="List the patches in the code only; ask Temporal about no run.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="Read at most N open runs per workflow type.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Every workflow.patched / deprecate_patch id in the registered families' workflow code,
    with the open runs that may still need it (their history lacks the patch's marker; for a
    deprecated patch, holds the marker workflow.patched wrote) and whether the patch may move
    to its next stage (docs/patches.md)."""
    from sagaworks import registry
    from sagaworks.client.patches import code_patches, open_runs_needing, patches_markdown

    try:
        families = [registry().family(family_name)] if family_name else None
    except KeyError as unknown:
        raise fail(str(unknown.args[0]), 2) from None
    reports = code_patches(families)

    async def look_up() -> None:
        from sagaworks.client.connection import connect

        await open_runs_needing(await connect(), reports, limit=limit)

    if not offline:
        run_async(look_up())
    print_json(reports) if as_json else print(patches_markdown(reports))
