"""Plan-analysis benchmark: per-stage timings and the orchestration overhead per stage.

    python -m bench.plans [--runs 5] [--sample plan-bueno]

Each run analyses a fresh copy of a sample plan (a comment appended after ``%%EOF`` gives it
a new content hash, so nothing is reused), side by side in one process:

- ``plain``: the nine stage functions called one after the other, outputs kept in memory
  (no database, no Temporal): the floor;
- ``sagaworks``: the plan-analysis workflow on the embedded server with a worker in this
  process: every stage an activity behind a risk assessment and its breaker, every output
  stored by content hash in SQLite.

Reported per stage: the plain function's median time, the activity's median time as the
history records it (scheduled to closed), and the orchestration overhead per stage:
(workflow median - plain median) / 9, which includes the assessment, the breaker, storing
the output (each stage's checkpoint) and the history round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sagaworks._breakers import BreakerConfig
from sagaworks.activities.db import Database
from sagaworks.activities.plan_analysis.activities import READS, SAMPLE_PLANS, STAGE_FUNCTIONS, PlanSettings
from sagaworks.activities.plan_analysis.common import StageContext
from sagaworks.client.devserver import start_embedded
from sagaworks.client.trace import trace_run
from sagaworks.contracts.plans import STAGES, PlanInput, PlanRef, StageOptions, plan_workflow_id
from sagaworks.worker import running_worker
from sagaworks.workflows.plan_analysis import PlanAnalysisWorkflow


def fresh_copy(sample: str, folder: Path) -> Path:
    path = folder / f"{sample}-{uuid.uuid4().hex[:8]}.pdf"
    path.write_bytes((SAMPLE_PLANS / f"{sample}.pdf").read_bytes() + f"\n%{uuid.uuid4()}\n".encode())
    return path


def plain_run(path: Path) -> dict[str, float]:
    """The stages as plain function calls; seconds per stage."""
    plan = PlanRef(path=str(path), content_hash="", plan_id="bench", municipality="")
    outputs: dict[str, dict] = {}
    times: dict[str, float] = {}
    for stage in STAGES:
        ctx = StageContext(
            plan=plan, options=StageOptions(), read_plan=path.read_bytes, outputs={s: outputs[s] for s in READS[stage]}
        )
        start = time.perf_counter()
        outputs[stage] = STAGE_FUNCTIONS[stage](ctx).output
        times[stage] = time.perf_counter() - start
    return times


async def workflow_runs(paths: list[Path], folder: Path) -> tuple[list[float], dict[str, list[float]]]:
    totals: list[float] = []
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    db = Database(f"sqlite:///{folder / 'app.db'}")
    task_queue = f"bench-{uuid.uuid4()}"
    async with await start_embedded(db_file=folder / "temporal.db") as env:
        settings = PlanSettings(roots=(folder,), breaker=BreakerConfig(3, 300))
        async with running_worker(env.client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
            for path in paths:
                plan = PlanInput(plan_id=path.stem, path=str(path))
                start = time.perf_counter()
                await env.client.execute_workflow(
                    PlanAnalysisWorkflow.run, plan, id=plan_workflow_id(plan.plan_id), task_queue=task_queue
                )
                totals.append(time.perf_counter() - start)
                trace = await trace_run(env.client, plan_workflow_id(plan.plan_id))
                for step in trace.steps:
                    if step.name == "run_plan_stage" and step.summary in per_stage:
                        per_stage[step.summary].append((step.duration_ms or 0) / 1000)
    db.dispose()
    return totals, per_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample", default="plan-bueno")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain_runs = [plain_run(fresh_copy(args.sample, folder)) for _ in range(args.runs + 1)][1:]  # warm-up: imports
        paths = [fresh_copy(args.sample, folder) for _ in range(args.runs + 1)]
        totals, per_stage = asyncio.run(workflow_runs(paths, folder))
    totals, per_stage = totals[1:], {s: v[1:] for s, v in per_stage.items()}  # the first run warms up
    plain_totals = [sum(run.values()) for run in plain_runs]
    print(f"{args.runs} runs of {args.sample}; Python {platform.python_version()}, {platform.machine()}")
    print("| stage | plain ms (median) | activity ms (median) | difference ms |")
    print("|---|---:|---:|---:|")
    for stage in STAGES:
        plain = statistics.median(run[stage] for run in plain_runs) * 1000
        orchestrated = statistics.median(per_stage[stage]) * 1000
        print(f"| {stage} | {plain:.1f} | {orchestrated:.1f} | {orchestrated - plain:.1f} |")
    plain_median, workflow_median = statistics.median(plain_totals) * 1000, statistics.median(totals) * 1000
    print(
        f"| whole run | {plain_median:.0f} | {workflow_median:.0f} "
        f"(workflow, end to end) | {workflow_median - plain_median:.0f} |"
    )
    print(f"orchestration overhead per stage: {(workflow_median - plain_median) / len(STAGES):.1f} ms")


if __name__ == "__main__":
    main()
