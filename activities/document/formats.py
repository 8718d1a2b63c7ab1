"""Format sniffing: what a file is, from its content, checked against its extension; and
opening a PDF or .docx within the limits (a file no library can open is rejected here)."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from pathlib import Path

from sagaworks import validation_error
from sagaworks.activities.document.roots import DocumentSettings
from sagaworks.contracts.document import DocumentFormat

EXTENSIONS: dict[str, DocumentFormat] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


def detect_format(path: Path, data: bytes, settings: DocumentSettings) -> DocumentFormat:
    """Decide the format from the content, and check it agrees with the extension.

    Raises a validation error naming the file and what is wrong with it.
    """
    declared = EXTENSIONS.get(path.suffix.lower())
    if data.startswith(b"%PDF-"):
        actual: DocumentFormat = "pdf"
    elif data.startswith(b"PK\x03\x04"):
        actual = _check_docx(path, data, settings)
    else:
        actual = _text_format(path, data, declared)
    if declared is None:
        raise validation_error(
            f"unsupported extension {path.suffix or '(none)'!r} (content looks like {actual})", field=str(path)
        )
    if declared != actual and {declared, actual} != {"txt", "md"}:
        raise validation_error(f"mislabelled: extension {path.suffix} but the content is {actual}", field=str(path))
    return declared if {declared, actual} == {"txt", "md"} else actual


def _check_docx(path: Path, data: bytes, settings: DocumentSettings) -> DocumentFormat:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as err:
        raise validation_error(f"corrupt zip container: {err}", field=str(path)) from None
    if "word/document.xml" not in names:
        raise validation_error("unsupported type: a zip archive that is not a .docx document", field=str(path))
    if unpacked > settings.max_unzipped_bytes:
        raise validation_error(
            f"refused: unpacks to {unpacked} bytes (limit {settings.max_unzipped_bytes}; zip bomb?)", field=str(path)
        )
    return "docx"


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


def decode_text(path: Path, data: bytes, html: bool) -> str:
    """The text of a text document: a BOM decides, then (HTML only) a declared charset, else UTF-8.

    Raises a validation error naming the encoding the bytes do not follow.
    """
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is None and html:
        declared = _DECLARED_CHARSET.search(data[:4096])
        if declared:
            encoding = declared.group(1).decode("ascii")
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise validation_error(f"unknown charset {encoding!r} declared", field=str(path)) from None
    encoding = encoding or "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        hint = "" if html else " (plain text must be UTF-8, or UTF-16 with a BOM)"
        raise validation_error(f"undecodable text: not {encoding} at byte {err.start}{hint}", field=str(path)) from None


def _text_format(path: Path, data: bytes, declared: DocumentFormat | None) -> DocumentFormat:
    import filetype

    kind = filetype.guess(data)
    if kind is not None:
        raise validation_error(f"unsupported type {kind.mime}", field=str(path))
    is_utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in data and not is_utf16:
        raise validation_error("unsupported type: binary data (NUL bytes)", field=str(path))
    html = declared == "html" or _looks_like_html(data)
    text = decode_text(path, data, html)
    head = text.lstrip()[:512].lower()
    if head.startswith(("<!doctype html", "<html")) or (declared == "html" and "<" in head):
        return "html"
    return declared if declared in ("txt", "md") else "txt"


def open_docx(path: Path, data: bytes):  # -> docx.document.Document
    """Open a .docx; whatever the library cannot read is the file's fault, said as such."""
    import docx

    try:
        return docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises lxml, zipfile, KeyError... for a broken file
        raise validation_error(f"corrupt .docx: {type(err).__name__}: {err}"[:500], field=str(path)) from None


def open_pdf(path: Path, data: bytes, settings: DocumentSettings):  # -> pypdfium2.PdfDocument
    """Open a PDF as any viewer would (the empty user password first), checked against the limits."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as err:
        if getattr(err, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise validation_error(
                "encrypted PDF: it needs a password to open; remove the password and submit it again", field=str(path)
            ) from None
        raise validation_error(f"corrupt PDF: {err}", field=str(path)) from None
    pages = len(pdf)
    if pages > settings.max_pdf_pages:
        pdf.close()
        raise validation_error(f"PDF has {pages} pages (limit {settings.max_pdf_pages})", field=str(path))
    return pdf
