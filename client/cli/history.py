"""``saga history`` and ``saga replay``: save histories and replay them against this code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sagaworks.client.cli.output import WorkflowId, err, out, run_async


def history(
    workflow_id: WorkflowId,
    out_file: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="Where to write the JSON history.")],
) -> None:
    """Save a run's event history as JSON (for replay tests: tests/histories/)."""
    from sagaworks.client.connection import connect
    from sagaworks.client.replay import fetch_history

    async def save() -> None:
        events = await fetch_history(await connect(), workflow_id)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(events.to_json())
        out.print(f"{len(events.events)} events of {workflow_id} -> {out_file}", markup=False)

    run_async(save())


def replay_command(
    workflow_id: Annotated[
        str | None, typer.Argument(metavar="WORKFLOW_ID", help="Replay this run's history from Temporal.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", exists=True, dir_okay=False, metavar="FILE", help="A history JSON file.")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", exists=True, file_okay=False, metavar="DIR", help="Every *.json in it.")
    ] = None,
) -> None:
    """Replay histories against this code; exit 1 on any nondeterminism."""
    from sagaworks.client.connection import connect
    from sagaworks.client.replay import fetch_history, history_files, load_history, replay

    if sum(x is not None for x in (workflow_id, file, directory)) != 1:
        err.print("give exactly one of: ID, --file F, --dir D")
        raise typer.Exit(2)

    async def check() -> int:
        if workflow_id:
            histories = [await fetch_history(await connect(), workflow_id)]
        else:
            paths = [file] if file else history_files(directory)  # type: ignore[arg-type]  # exactly one of the three was given: here file or directory
            if not paths:
                err.print(f"no *.json histories in {directory}", markup=False)
                return 2
            try:
                histories = [load_history(p) for p in paths if p is not None]
            except (ValueError, KeyError) as unreadable:
                err.print(f"not a Temporal history: {unreadable}", markup=False)
                return 2
        results = await replay(histories)
        for run_id, failure in results.replay_failures.items():
            err.print(f"replay failed for run {run_id}: {failure}", markup=False)
        ok = len(histories) - len(results.replay_failures)
        out.print(f"{ok}/{len(histories)} histories replayed cleanly")
        return 1 if results.replay_failures else 0

    raise typer.Exit(run_async(check()))
