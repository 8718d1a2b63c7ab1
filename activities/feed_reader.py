"""Read the entries of an RSS 0.9x/1.0/2.0 or Atom document as a stream, within limits.

Feeds are untrusted: the document is parsed incrementally by defusedxml (entity
declarations and external references are refused when the parser meets them, before any
expansion), each entry is turned into an :class:`Article` and dropped from the tree as soon
as it ends, and every part of an entry is capped. So a feed costs the memory of one entry
and the articles read so far, whatever its size; entries past the feed's ``max_entries``
are only counted. The rest of the document is still read, so a feed that is not
well-formed XML is refused whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO
from xml.etree.ElementTree import Element, ParseError, tostring

from sagaworks import ErrorClass, error, validation_error
from sagaworks.contracts.news_digest import Article

MAX_MARKUP_CHARS = 64_000
"""Of an entry's HTML (its content or summary), only this much is parsed."""
MAX_TEXT_CHARS = 4_000
"""An article keeps this much of its plain text: what its summary is built from."""
MAX_TITLE_CHARS = 300
MAX_LINK_CHARS = 2_000
"""A longer link is dropped (a cut link is a wrong one)."""
MAX_GUID_CHARS = 500
"""Of the GUID, the article keeps this much; its key hashes the whole GUID."""

ATOM = "{http://www.w3.org/2005/Atom}"
ATOM_03 = "{http://purl.org/atom/ns#}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS_10 = "{http://purl.org/rss/1.0/}"
RSS_090 = "{http://my.netscape.com/rdf/simple/0.9/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"

ENTRY_TAGS = {
    "rss": ("item",),
    f"{RDF}RDF": (f"{RSS_10}item", f"{RSS_090}item", "item"),
    f"{ATOM}feed": (f"{ATOM}entry",),
    f"{ATOM_03}feed": (f"{ATOM_03}entry",),
}
"""The root elements of the formats read, and the tags of their entries."""


def plain(markup: str, limit: int) -> str:
    """The text of an HTML fragment (scripts and styles dropped), whitespace collapsed, at most ``limit`` characters."""
    from bs4 import BeautifulSoup

    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())[:limit]
    soup = BeautifulSoup(markup[:MAX_MARKUP_CHARS], "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    return " ".join(soup.get_text(" ").split())[:limit]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(entry: Element, *tags: str) -> Element | None:
    for tag in tags:
        found = entry.find(tag)
        if found is not None:
            return found
    return None


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    if element.get("type") == "xhtml" or len(element):
        # Atom's inline XHTML (or markup left unescaped): the serialised children.
        inner = element.find(XHTML_DIV)
        inner = inner if inner is not None else element
        parts = [inner.text or ""] + [tostring(child, encoding="unicode") for child in inner]
        return "".join(parts)[:MAX_MARKUP_CHARS]
    return (element.text or "")[:MAX_MARKUP_CHARS]


def _date(text: str) -> datetime | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, Dublin Core) in UTC to the second; None when neither."""
    text = text.strip()
    if not text:
        return None
    try:
        stamp = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return None
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    try:
        return stamp.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # year 1 or 9999 moved across midnight: no usable date
        return None


def _atom_link(entry: Element, ns: str) -> str:
    for link in entry.findall(f"{ns}link"):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link.get("href", "").strip()
    return ""


def _article(entry: Element, source: str) -> Article | None:
    """The article of one entry element; None when it has no id, link or title."""
    if entry.tag.startswith((ATOM, ATOM_03)):
        ns = ATOM if entry.tag.startswith(ATOM) else ATOM_03
        link = _atom_link(entry, ns)
        guid = _text(entry.find(f"{ns}id")).strip()
        markup = _text(_child(entry, f"{ns}content", f"{ns}summary"))
        when = _text(_child(entry, f"{ns}published", f"{ns}issued", f"{ns}updated", f"{ns}modified"))
        title = _text(entry.find(f"{ns}title"))
    else:
        ns = entry.tag[: -len("item")]  # RSS 2.0 has none, RSS 1.0 and 0.90 theirs
        link = _text(entry.find(f"{ns}link")).strip()
        guid_element = entry.find("guid")
        guid = _text(guid_element).strip() or entry.get(f"{RDF}about", "").strip()
        if not link and guid_element is not None and guid_element.get("isPermaLink", "true") == "true":
            link = guid
        markup = _text(_child(entry, f"{CONTENT}encoded")) or _text(entry.find(f"{ns}description"))
        when = _text(_child(entry, "pubDate", f"{DC}date"))
        title = _text(entry.find(f"{ns}title"))
    guid = guid or link or title.strip()
    if not guid:
        return None
    return Article(
        key=hashlib.sha256(guid.encode()).hexdigest(),
        guid=guid[:MAX_GUID_CHARS],
        title=plain(title, MAX_TITLE_CHARS) or "(untitled)",
        link=link if len(link) <= MAX_LINK_CHARS else "",
        source=source,
        published=_date(when),
        text=plain(markup, MAX_TEXT_CHARS),
    )


class FeedReader:
    """The articles of one feed document, read from ``stream`` as they come.

    Iterating raises a final ``InvalidInput`` error for entity declarations or external
    references, and a final ``ProcessingError`` for malformed XML or a document that is
    not RSS or Atom; ``where`` names the feed in those errors.
    """

    def __init__(self, stream: IO[bytes], source: str, where: str, max_entries: int) -> None:
        self._stream = stream
        self._source = source
        self._where = where
        self._max_entries = max_entries
        self.entries = 0
        """Entries seen so far, read or not."""

    @property
    def entries_not_read(self) -> int:
        """Entries past ``max_entries``: counted, never parsed."""
        return max(0, self.entries - self._max_entries)

    def __iter__(self) -> Iterator[Article]:
        import defusedxml.ElementTree as safe_xml
        from defusedxml import DefusedXmlException

        try:
            yield from self._articles(safe_xml.iterparse(self._stream, events=("start", "end")))
        except DefusedXmlException as refused:
            raise validation_error(
                f"refused: the feed declares XML entities or external references ({type(refused).__name__}); "
                "entity expansion is never performed",
                field=self._where,
            ) from None
        except ParseError as malformed:
            raise error(
                ErrorClass.PROCESSING, f"{self._where}: not well-formed XML: {malformed}", non_retryable=True
            ) from None

    def _articles(self, events: Iterator[tuple[str, Element]]) -> Iterator[Article]:
        stack: list[Element] = []
        entry_tags: tuple[str, ...] = ()
        in_entry = 0  # depth of the open entry element, 0 outside one
        for event, element in events:
            if event == "start":
                if not stack:
                    entry_tags = ENTRY_TAGS.get(element.tag, ())
                    if not entry_tags:
                        raise error(
                            ErrorClass.PROCESSING,
                            f"{self._where}: not an RSS or Atom feed (root <{_local(element.tag)}>)",
                            non_retryable=True,
                        )
                stack.append(element)
                if not in_entry and element.tag in entry_tags:
                    in_entry = len(stack)
                continue
            stack.pop()
            if in_entry and len(stack) + 1 > in_entry:
                continue  # a part of the open entry: kept until the entry ends
            if in_entry:
                in_entry = 0
                self.entries += 1
                if self.entries <= self._max_entries and (article := _article(element, self._source)) is not None:
                    yield article
            if stack:
                stack[-1].remove(element)  # done with: the tree never holds more than one entry
