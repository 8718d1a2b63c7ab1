"""Document benchmark: a batch on sagaworks vs. the same functions as a plain asyncio pipeline.

    python -m bench.documents [--count 200] [--megabytes 20] [--large-megabytes 10]

Writes a mixed-format corpus (bench/corpus.py), then processes it side by side in one run
with the offline provider:

- ``asyncio``: read, detect, parse, chunk, extract and store with the same activity code,
  called directly, four documents at a time (the floor);
- ``sagaworks``: ``DocumentBatch`` on the embedded server with a worker in its own process,
  as shipped (parsing, splitting and YAKE in its process pool, eight chunks per extraction
  activity), with one chunk per activity (the default before the speed work), and with
  that and ``--cpu-processes 0`` too (everything in the worker's threads, as before CPU-bound
  work moved to the process pool).

Reports documents/s, MB/s, the worker's peak RSS and the largest workflow history, then
processes one large text document and reports its largest history (the target: < 1 MB),
and measures the peak memory of parsing one large HTML page in a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from bench.corpus import write_corpus
from sagaworks.activities.db import Database
from sagaworks.activities.document import DocumentActivities, DocumentSettings
from sagaworks.activities.llm import OfflineProvider
from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.document import (
    BatchInput,
    BatchResult,
    ChunkInput,
    DocumentInput,
    ExtractInput,
    StoreInput,
    ValidateInput,
    document_id_for,
    document_workflow_id,
)
from sagaworks.workflows.document import DocumentPipeline
from sagaworks.workflows.document_batch import DocumentBatch


async def floor(corpus: Path, folder: Path, concurrency: int = 4) -> float:
    """Seconds to process the corpus with the activity code called directly."""
    acts = DocumentActivities(
        Database(f"sqlite:///{folder / 'floor.db'}"), OfflineProvider(), DocumentSettings(roots=(corpus,))
    )
    env = ActivityEnvironment()
    semaphore = asyncio.Semaphore(concurrency)

    def process(path: Path) -> None:
        run_key = f"floor/{path.name}"
        doc = env.run(acts.validate_document, ValidateInput(path=str(path), run_key=run_key))
        summary = env.run(
            acts.chunk_document, ChunkInput(document=doc, run_key=run_key, chunk_size=2000, chunk_overlap=200)
        )
        for index in range(summary.chunk_count):
            env.run(
                acts.extract_concepts,
                ExtractInput(
                    document_id=doc.document_id, content_hash=doc.rows_key, chunk_index=index, run_key=run_key
                ),
            )
        env.run(acts.store_concepts, StoreInput(document=doc, run_key=run_key))

    async def bounded(path: Path) -> None:
        async with semaphore:
            await asyncio.to_thread(process, path)

    start = time.perf_counter()
    await asyncio.gather(*(bounded(p) for p in sorted(corpus.iterdir())))
    return time.perf_counter() - start


def start_worker(address: str, task_queue: str, database: Path, roots: Path, *options: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "SAGAWORKS_DOCUMENT_ROOTS": str(roots),
        "SAGAWORKS_LLM_PROVIDER": "offline",
        "SAGAWORKS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "sagaworks.worker", "--address", address, "--task-queue", task_queue, *options]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def largest_history(client: Client, query: str) -> tuple[int, str]:
    """The largest history (bytes of its JSON) among the workflows ``query`` lists."""
    largest = (0, "")
    async for execution in client.list_workflows(query):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        size = len(history.to_json().encode())
        largest = max(largest, (size, f"{execution.id} ({execution.workflow_type})"))
    return largest


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report the
# benchmark's own peak.
_PARSE_PEAK = """
import sys
from pathlib import Path
from sagaworks.activities.document import DocumentSettings, detect_format, parse_text
path = Path(sys.argv[1])
if sys.argv[2] == "parse":
    data = path.read_bytes()
    settings = DocumentSettings(roots=(path.parent,))
    parse_text(path, data, detect_format(path, data, settings), settings)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def html_parse_peak_mib(folder: Path, megabytes: float) -> tuple[float, float]:
    """(peak RSS of a process that parsed an HTML page of ``megabytes``, of one that did not)."""
    page = folder / "large.html"
    rows = "".join(
        f"<tr><td>row {i}</td><td><a href='#r{i}'>Durable execution</a> keeps every step in the history.</td></tr>\n"
        for i in range(int(megabytes * 2**20 / 110))
    )
    page.write_text(f"<!DOCTYPE html><html><head><title>Large</title></head><body><table>{rows}</table></body></html>")
    peaks = []
    for mode in ("parse", "import"):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE_PEAK, str(page), mode], capture_output=True, text=True, check=True
        )
        peaks.append(int(out.stdout.split()[0]) / 1024)
    return peaks[0], peaks[1]


VARIANTS = [
    ("sagaworks DocumentBatch, in threads, a chunk per activity", ("--cpu-processes", "0"), 1),
    ("sagaworks DocumentBatch, a chunk per activity", (), 1),
    ("sagaworks DocumentBatch (shipped default)", (), BatchInput.model_fields["chunks_per_activity"].default),
]
"""Each measured batch: the worker's options and the batch's chunks per extraction activity."""


@dataclass
class Batch:
    engine: str
    seconds: float
    result: BatchResult
    rss_mib: float
    """Peak RSS of the worker process (its pool's processes not included)."""
    history_bytes: int
    history_of: str


async def run_batch(
    client: Client, engine: str, corpus: Path, folder: Path, options: tuple[str, ...], chunks_per_activity: int
) -> Batch:
    """The corpus as one DocumentBatch on a fresh worker process and application database."""
    task_queue = f"bench-{uuid.uuid4()}"
    name = uuid.uuid4().hex[:8]
    worker = start_worker(client.service_client.config.target_host, task_queue, folder / f"{name}.db", folder, *options)
    try:
        batch_id = f"bench-batch-{name}"
        start = time.perf_counter()
        result = await client.execute_workflow(
            DocumentBatch.run,
            BatchInput(folder=str(corpus), max_in_flight=4, chunks_per_activity=chunks_per_activity),
            id=batch_id,
            task_queue=task_queue,
        )
        seconds = time.perf_counter() - start
        rss = peak_rss_mib(worker.pid)
        history_bytes, history_of = await largest_history(client, f"WorkflowId STARTS_WITH '{batch_id}'")
    finally:
        worker.terminate()
        worker.wait()
    return Batch(engine, seconds, result, rss, history_bytes, history_of)


async def main(count: int, megabytes: float, large_megabytes: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus"
        write_corpus(corpus, count, megabytes)
        corpus_mb = sum(p.stat().st_size for p in corpus.iterdir()) / 2**20
        floor_seconds = await floor(corpus, folder)

        async with await start_embedded(db_file=folder / "temporal.db") as env:
            client = env.client
            batches = []
            for engine, options, chunks_per_activity in VARIANTS:
                batches.append(await run_batch(client, engine, corpus, folder, options, chunks_per_activity))
            # The large document, on the shipped worker.
            task_queue = f"bench-{uuid.uuid4()}"
            worker = start_worker(client.service_client.config.target_host, task_queue, folder / "large.db", folder)
            try:
                large = folder / "large.txt"
                sentence = "Durable execution keeps each step of a document pipeline in the workflow history. "
                large.write_text((sentence * 24 + "\n\n") * int(large_megabytes * 2**20 / (len(sentence) * 24 + 2)))
                large_id = document_workflow_id(document_id_for(str(large)))
                start = time.perf_counter()
                large_result = await client.execute_workflow(
                    DocumentPipeline.run, DocumentInput(path=str(large)), id=large_id, task_queue=task_queue
                )
                large_seconds = time.perf_counter() - start
                large_history = await largest_history(client, f"WorkflowId STARTS_WITH '{large_id}'")
            finally:
                worker.terminate()
                worker.wait()
        html_peak, baseline = html_parse_peak_mib(folder, 8.4)

    print(
        f"\n{count} documents, {corpus_mb:.1f} MB, mixed formats; offline provider; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print("| engine | seconds | documents/s | MB/s | peak worker RSS | largest history |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| plain asyncio (floor) | {floor_seconds:.1f} | {count / floor_seconds:.2f} | "
        f"{corpus_mb / floor_seconds:.2f} | - | - |"
    )
    for batch in batches:
        print(
            f"| {batch.engine} | {batch.seconds:.1f} | {count / batch.seconds:.2f} | "
            f"{corpus_mb / batch.seconds:.2f} | {batch.rss_mib:.0f} MiB | {batch.history_bytes / 1024:.0f} KiB |"
        )
    print()
    for batch in batches:
        result = batch.result
        print(
            f"{batch.engine}: {result.completed} completed, {result.rejected} rejected, {result.failed} failed; "
            f"throughput {floor_seconds / batch.seconds:.0%} of the floor's; largest history {batch.history_of}"
        )
    print(
        f"{large_megabytes:.0f} MB text document: {large_result.chunk_count} chunks in {large_seconds:.1f} s, "
        f"largest history {large_history[0] / 1024:.0f} KiB ({large_history[1]})"
    )
    print(
        f"8.4 MB HTML page: parsing peaks at {html_peak:.0f} MiB RSS in a fresh process "
        f"({baseline:.0f} MiB without parsing)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="documents in the corpus (default %(default)s)")
    parser.add_argument("--megabytes", type=float, default=20, help="corpus size (default %(default)s)")
    parser.add_argument(
        "--large-megabytes", type=float, default=10, help="the large text document (default %(default)s)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.count, args.megabytes, args.large_megabytes))
