"""News-digest memory benchmark: hostile feeds, whole-document parsing vs. the shipped stream.

    python -m bench.news_memory [--digests 5]

Writes the hostile feeds (10,000 entries in 3.1 MB; one entry of 4 MiB of markup; 5 MiB
just under the limit, mostly padding; malformed; an entity bomb), then, side by side in one
run:

- per feed, the peak RSS of a fresh process that fetches it (VmHWM over what the imports
  alone take): ``whole``, as the news activities did before they streamed (the bytes, a
  defusedxml tree, feedparser, the articles, their JSON cache row and the activity result,
  all in memory at once: needs ``feedparser``, in the ``bench`` extra), and ``stream``,
  ``NewsActivities.fetch_feed`` as shipped (parsed as a stream, capped, stored) with
  ``max_entries`` at its largest, so both read every entry;
- a worker in its own process (as ``python -m sagaworks.worker`` runs) building ``--digests``
  digests one after another, each over every hostile feed plus a 50 MB HTTP stream
  (default ``max_entries``): its RSS after each digest and its peak, alone and with its
  children (the CPU process pool).

Prints tables; asserts nothing (figures depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sagaworks.client.devserver import start_embedded
from sagaworks.contracts.news_digest import FeedSource, NewsDigestInput, NewsDigestResult
from tests.feed_server import BOMB, MALFORMED, feed_server, large_feed

FEED_LIMIT = 5 * 2**20


def write_feeds(folder: Path) -> dict[str, Path]:
    """The hostile feeds as files under ``folder``."""
    paragraph = "<p>" + "A sentence about the compiler release and its database driver. " * 8 + "</p>"
    long_entry = html.escape(paragraph * (4 * 2**20 // len(paragraph)))
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Padded</title>'
    item = (
        b'<item><title>Padded</title><guid isPermaLink="false">padded-1</guid><description>Short.</description></item>'
    )
    tail = b"</channel></rss>"
    padding = b"<!-- padding -->" * ((FEED_LIMIT - 4096 - len(head) - len(item) - len(tail)) // 16)
    feeds = {
        "large (10,000 entries)": large_feed(),
        "long entry (4 MiB)": (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title><item><title>Long</title>'
            f'<guid isPermaLink="false">long-1</guid><description>{long_entry}</description></item></channel></rss>'
        ).encode(),
        "padded (5 MiB)": head + item + padding + tail,
        "malformed": MALFORMED,
        "entity bomb": BOMB,
    }
    paths = {}
    for n, (name, data) in enumerate(feeds.items()):
        paths[name] = folder / f"feed-{n}.xml"
        paths[name].write_bytes(data)
    return paths


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report the
# benchmark's own peak. Each mode imports everything first, then reads VmRSS: the peak
# above it is the fetch's own.
_FETCH_PEAK = """
import json, sys
from pathlib import Path
import defusedxml.ElementTree as safe_xml
from sagaworks.activities.db import Database
from sagaworks.activities.news import NewsActivities, FeedSettings
from sagaworks.activities.feed_reader import plain
from sagaworks.contracts.news_digest import Article, FeedArticles, FeedSource

def status(key):
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith(key)))

def whole(path):
    # The news activities before they streamed: activities/news.py at the parent of the
    # commit that added activities/feed_reader.py (parse_feed, fetch_feed).
    import hashlib, feedparser
    from datetime import datetime, timezone
    data = path.read_bytes()
    safe_xml.fromstring(data)
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    articles = []
    for entry in parsed.entries:
        link = entry.get("link", "")
        guid = entry.get("id") or link or entry.get("title", "")
        content = entry.get("content", [{}])[0].get("value") if entry.get("content") else None
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        articles.append(Article(
            key=hashlib.sha256(guid.encode()).hexdigest(),
            guid=guid,
            title=plain(entry.get("title", ""), 10**9) or "(untitled)",
            link=link, source="bench", published=datetime(*stamp[:6], tzinfo=timezone.utc) if stamp else None,
            text=plain(content or entry.get("summary", ""), 10**9),
        ))
    cache_row = json.dumps([a.model_dump(mode="json") for a in articles])
    result = FeedArticles(feed="bench", articles=articles, fetched_from=str(path)).model_dump_json()
    return len(articles), len(result)

def stream(news, path):
    # Every entry, as the whole-document parse reads them (the default reads 1,000).
    fetched = news.fetch_feed(FeedSource(name="bench", url=str(path), max_entries=10_000))
    return fetched.entries, len(fetched.model_dump_json())

path, mode, folder = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
news = NewsActivities(Database(f"sqlite:///{folder}/bench-{path.stem}.db"), feeds=FeedSettings(roots=(path.parent,)))
before = status("VmRSS:")
try:
    outcome = whole(path) if mode == "whole" else stream(news, path)
except Exception as refused:
    outcome = type(refused).__name__
print(json.dumps({"peak_kib": status("VmHWM:") - before, "outcome": outcome}))
"""


def fetch_peak(path: Path, mode: str, folder: Path) -> tuple[float, str]:
    """(MiB the fetch of ``path`` added to a fresh process's peak RSS, what it gave)."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", _FETCH_PEAK, str(path), mode, str(folder)], capture_output=True, text=True, check=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    outcome = figures["outcome"]
    described = (
        f"{outcome[0]} articles, result {outcome[1]:,} B" if isinstance(outcome, list) else f"refused ({outcome})"
    )
    return figures["peak_kib"] / 1024, described


def _mib(pid: int, key: str, children: bool = False) -> float:
    """``key`` (VmRSS or VmHWM) of ``pid`` in MiB, with its children's when asked."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(key))
    total = int(line.split()[1]) / 1024
    if children:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += sum(_mib(int(child), key, True) for child in (task / "children").read_text().split())
    return total


async def worker_series(
    feeds: dict[str, Path], folder: Path, digests: int
) -> list[tuple[int, float, float, float, int]]:
    """Per digest: (number, worker RSS MiB after it, its peak so far, the same peak with its
    children, articles stored)."""
    rows = []
    async with await start_embedded() as env:
        address = env.client.service_client.config.target_host
        task_queue = f"bench-news-{uuid.uuid4()}"
        environ = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{folder / 'worker.db'}",
            SAGAWORKS_FEED_ROOTS=str(folder),
            SAGAWORKS_LLM_PROVIDER="offline",
        )
        command = [sys.executable, "-m", "sagaworks.worker", "--address", address, "--task-queue", task_queue]
        worker = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with feed_server(folder) as server:
                sources = [FeedSource(name=name, url=str(path)) for name, path in feeds.items()]
                sources.append(FeedSource(name="50 MB stream", url=server.url("huge")))
                for n in range(1, digests + 1):
                    request = NewsDigestInput(name=f"bench-{n}", feeds=sources, max_articles=500)
                    result = await env.client.execute_workflow(
                        "NewsDigestWorkflow",
                        request,
                        id=f"bench-news-{uuid.uuid4()}",
                        task_queue=task_queue,
                        result_type=NewsDigestResult,
                    )
                    rows.append(
                        (
                            n,
                            _mib(worker.pid, "VmRSS:"),
                            _mib(worker.pid, "VmHWM:"),
                            _mib(worker.pid, "VmHWM:", True),
                            len(result.articles),
                        )
                    )
        finally:
            worker.terminate()
            worker.wait(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--digests", type=int, default=5, help="digests the worker builds in a row (default %(default)s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        feeds = write_feeds(folder)
        print("| feed | bytes | whole document: peak MiB | stream: peak MiB | ratio | whole gave | stream gave |")
        print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
        for name, path in feeds.items():
            whole, whole_gave = fetch_peak(path, "whole", folder)
            stream, stream_gave = fetch_peak(path, "stream", folder)
            ratio = f"{whole / stream:.1f}x" if stream >= 0.5 else "-"
            print(
                f"| {name} | {path.stat().st_size:,} | {whole:.1f} | "
                f"{stream:.1f} | {ratio} | {whole_gave} | {stream_gave} |"
            )
        rows = asyncio.run(worker_series(feeds, folder, args.digests))
    print(
        f"\nA worker process (children included) building {args.digests} "
        "digests of every feed above plus a 50 MB HTTP stream:"
    )
    print("| digest | worker RSS after it, MiB | worker peak so far, MiB | with its children, MiB | articles stored |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, rss, peak, family_peak, stored in rows:
        print(f"| {n} | {rss:.0f} | {peak:.0f} | {family_peak:.0f} | {stored} |")


if __name__ == "__main__":
    main()
