"""Text extraction: the plain text of a validated document, and its chunks.

These run in the worker's process pool (``DocumentActivities._cpu``): plain functions of
picklable arguments.
"""

from __future__ import annotations

from pathlib import Path

from sagaworks import validation_error
from sagaworks.activities.document.formats import decode_text, open_docx, open_pdf
from sagaworks.activities.document.roots import DocumentSettings
from sagaworks.contracts.document import DocumentFormat


def parse_text(path: Path, data: bytes, fmt: DocumentFormat, settings: DocumentSettings) -> str:
    """The plain text of a validated document.

    Memory stays near the size of the text: PDF pages are read one at a time and HTML is
    parsed as a stream of events, never as a tree.
    """
    if fmt == "pdf":
        return _pdf_text(path, data, settings)
    if fmt == "docx":
        document = open_docx(path, data)
        return "\n\n".join(p.text for p in document.paragraphs if p.text.strip())
    text = decode_text(path, data, html=fmt == "html")
    return html_text(text) if fmt == "html" else text


class _HtmlText:
    """An lxml parser target keeping the text outside scripts and styles, a line per block."""

    SKIPPED = frozenset({"script", "style", "noscript", "template"})
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "section",
            "article",
            "table",
            "ul",
            "ol",
            "dl",
            "dt",
            "dd",
            "blockquote",
            "title",
            "td",
            "th",
        }
    )

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._skipping = 0

    def start(self, tag: str, _attrib: dict[str, str]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def end(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def data(self, text: str) -> None:
        if not self._skipping:
            self.parts.append(text)

    def comment(self, _text: str) -> None:
        pass

    def close(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def html_text(text: str, feed_chars: int = 1 << 16) -> str:
    """The visible text of an HTML page, parsed as a stream (no tree is built)."""
    from lxml import etree

    parser = etree.HTMLParser(target=_HtmlText(), recover=True, no_network=True)
    for start in range(0, len(text), feed_chars):
        parser.feed(text[start : start + feed_chars])
    return parser.close()


def _pdf_text(path: Path, data: bytes, settings: DocumentSettings) -> str:
    import pypdfium2.raw as pdfium_c

    pdf = open_pdf(path, data, settings)
    texts: list[str] = []
    images = 0
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            if not texts[-1].strip():
                images += sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))
            textpage.close()
            page.close()
    finally:
        pdf.close()
    text = "\n\n".join(texts)
    if not text.strip() and images:
        raise validation_error(
            f"this PDF holds images only ({images} on {len(texts)} pages, a scan?): it needs OCR, "
            "which sagaworks does not do; submit a PDF with a text layer",
            field=str(path),
        )
    return text


def split_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Sentence-aware chunks: paragraphs, then lines, then sentences, then words."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    return [chunk for chunk in splitter.split_text(text) if chunk.strip()]
