"""``saga stats``: per activity type figures derived from Temporal histories."""

from __future__ import annotations

from typing import Annotated

import typer

from sagaworks import registry
from sagaworks.client.cli.output import fail, out, print_json, print_rows, run_async


def stats(
    family_name: Annotated[str | None, typer.Option("--family", help="Only runs of this family.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most recent runs to read.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Per activity type: count, success rate, min/avg/p95/max duration, payload sizes (from histories)."""
    fam = None
    if family_name is not None:
        try:
            fam = registry().family(family_name)
        except KeyError as unknown:
            raise fail(unknown.args[0], 2) from None

    from sagaworks.client.connection import connect
    from sagaworks.client.stats import activity_stats

    async def show() -> None:
        figures = await activity_stats(await connect(), family=fam, limit=limit)
        if as_json:
            print_json(figures)
            return
        out.print(f"{figures['workflows']} runs read", markup=False)
        print_rows(
            ("activity", "count", "ok %", "min s", "avg s", "p95 s", "max s", "retries", "in B", "out B"),
            [
                (
                    s["activity_type"],
                    str(s["count"]),
                    f"{100 * s['success_rate']:.0f}",
                    f"{s['min_seconds']:.3f}",
                    f"{s['avg_seconds']:.3f}",
                    f"{s['p95_seconds']:.3f}",
                    f"{s['max_seconds']:.3f}",
                    str(s["retries"]),
                    f"{s['avg_input_bytes']:.0f}",
                    f"{s['avg_output_bytes']:.0f}",
                )
                for s in figures["activities"]
            ],
        )

    run_async(show())
