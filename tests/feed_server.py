"""A local HTTP server of feeds for the news-digest tests: real feed files from a folder,
and the hostile ones (malformed, empty, 404, slow, 50 MB, entity-expansion bomb, 10,000 entries, a 4 MiB entry)."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.ports import serving

EMPTY = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title>
<link>https://quiet.example.org/</link><description>Nothing this week.</description></channel></rss>"""
MALFORMED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>
<item><title>Unclosed item</title><description>This element is never closed</channel></rss>"""
BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>'
)
"""The 'billion laughs': nine levels of ten, 10^9 copies of 'lol' if anything expanded it."""
HUGE_BYTES = 50 * 2**20
LARGE_ENTRIES = 10_000
LONG_ENTRY_BYTES = 4 * 2**20


def large_feed(entries: int = LARGE_ENTRIES, name: str = "large") -> bytes:
    """A well-formed RSS feed of ``entries`` items of about 310 bytes each (3.1 MB for
    10,000: under the 5 MiB feed limit), newest first; ``name`` makes its GUIDs its own."""
    items = "".join(
        f"<item><title>Release {n} of the platform</title><link>https://{name}.example.org/{n}</link>"
        f'<guid isPermaLink="false">{name}-{n}</guid><pubDate>Mon, 23 Nov 2026 '
        f"{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} GMT</pubDate>"
        f"<description>Release {n} ships a faster compiler and fixes to "
        "the database driver. Upgrade when ready.</description></item>"
        for n in range(entries - 1, -1, -1)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Large</title>{items}</channel></rss>'.encode()


@dataclass
class FeedServer:
    base_url: str
    folder: Path
    release_slow: threading.Event = field(default_factory=threading.Event)
    huge_bytes_sent: list[int] = field(default_factory=list)

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route}"


@contextmanager
def feed_server(folder: Path) -> Iterator[FeedServer]:
    """Serve ``folder``'s files under /feeds/NAME plus /empty, /malformed, /missing, /slow, /huge,
    /bomb, /large[-NAME], /long-entry."""
    state = FeedServer(base_url="", folder=folder)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            route = self.path.lstrip("/")
            if route.startswith("feeds/") and (state.folder / route[6:]).is_file():
                self._send((state.folder / route[6:]).read_bytes())
            elif route in ("empty", "malformed", "bomb"):
                self._send({"empty": EMPTY, "malformed": MALFORMED, "bomb": BOMB}[route])
            elif route.startswith("large"):  # /large, /large-NAME: GUIDs of their own
                self._send(large_feed(name=route))
            elif route == "long-entry":
                # One entry whose text is 4 MiB of markup: under the feed limit, far over an article's.
                paragraph = "<p>" + "A sentence about the compiler release and its database driver. " * 8 + "</p>"
                text = html.escape(paragraph * (LONG_ENTRY_BYTES // len(paragraph)))
                self._send(
                    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title><item><title>Long</title>'
                    b'<guid isPermaLink="false">long-1</guid><description>'
                    + text.encode()
                    + b"</description></item></channel></rss>"
                )
            elif route == "slow":
                state.release_slow.wait(60)
                self._send(EMPTY)
            elif route == "huge":
                # No Content-Length: the client learns the size only by reading it.
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                sent, block = 0, b"<!-- padding -->" * 65536
                try:
                    self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                    while sent < HUGE_BYTES:
                        self.wfile.write(block)
                        sent += len(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                state.huge_bytes_sent.append(sent)
                self.close_connection = True
            else:
                self._send(b"not found", 404)

    with serving(Handler) as state.base_url:
        try:
            yield state
        finally:
            state.release_slow.set()  # a slow feed's handler returns before the server stops
