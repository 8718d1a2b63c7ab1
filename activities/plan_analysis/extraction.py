"""Stages 1-2: load the PDF (structure, pages, text layer) and extract its text and tables.

pypdf reads the structure and tells which pages carry a text layer; pdfplumber extracts
text and ruled tables page by page; pages without a text layer are read with Tesseract
(Spanish data) when the EMPTY_EXTRACTION mitigation asks for OCR.
"""

from __future__ import annotations

import io
import shutil
from typing import Any

from sagaworks.activities.plan_analysis.common import PlanError, StageContext, StageResult

MIN_PAGE_CHARS = 20
"""A page with fewer extracted characters has no usable text layer (a scan)."""


def load(ctx: StageContext) -> StageResult:
    """Open the PDF and describe its pages; a PDF that cannot be read is PDF_CORRUPT."""
    import pypdf
    from pypdf.errors import PyPdfError

    data = ctx.read_plan()
    if not data.startswith(b"%PDF-"):
        raise PlanError.pdf_corrupt(f"{ctx.plan.path}: not a PDF (no %PDF- header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise PlanError.pdf_corrupt(f"{ctx.plan.path}: encrypted PDF; remove the password first")
        pages = [
            {"number": number, "chars": len((page.extract_text() or "").strip())}
            for number, page in enumerate(reader.pages, 1)
        ]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        raise PlanError.pdf_corrupt(f"{ctx.plan.path}: {type(err).__name__}: {err}") from None
    if not pages:
        raise PlanError.pdf_corrupt(f"{ctx.plan.path}: the PDF has no pages")
    for page in pages:
        page["has_text"] = page["chars"] >= MIN_PAGE_CHARS
    without = [p["number"] for p in pages if not p["has_text"]]
    return StageResult(
        output={"pages": pages, "size_bytes": len(data)},
        metrics={"pages": len(pages), "pages_without_text": len(without), "size_bytes": len(data)},
        summary=f"{len(pages)} pages, {len(without)} without a text layer" + (f" ({without})" if without else ""),
    )


def ocr_available() -> bool:
    """Whether the Tesseract binary is installed (Debian: tesseract-ocr, tesseract-ocr-spa)."""
    return shutil.which("tesseract") is not None


def _ocr(page: Any) -> str:
    import pytesseract

    if not ocr_available():
        raise PlanError.unavailable("OCR needs Tesseract: apt-get install tesseract-ocr tesseract-ocr-spa")
    image = page.to_image(resolution=300).original
    return str(pytesseract.image_to_string(image, lang="spa"))


def extract(ctx: StageContext) -> StageResult:
    """Text and tables of every page in scope; scanned pages need the OCR mitigation."""
    import pdfplumber

    data = ctx.read_plan()
    loaded = ctx.upstream("load")
    numbers = [p["number"] for p in loaded["pages"]]
    numbers = numbers[: max(1, round(len(numbers) * ctx.options.scope))]
    batch = ctx.options.batch_pages or len(numbers)
    pages: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    scanned: list[int] = []
    # In batches, each batch's pages are opened and released together: memory stays
    # bounded by the batch, not the document.
    for start in range(0, len(numbers), batch):
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for number in numbers[start : start + batch]:
                page = pdf.pages[number - 1]
                text = (page.extract_text() or "").strip()
                source = "text"
                if len(text) < MIN_PAGE_CHARS:
                    if not ctx.options.ocr:
                        scanned.append(number)
                        continue
                    text, source = _ocr(page).strip(), "ocr"
                pages.append({"number": number, "text": text, "source": source})
                for rows in page.extract_tables():
                    cleaned = [[(cell or "").strip() for cell in row] for row in rows if any(row)]
                    if len(cleaned) >= 2:
                        tables.append({"page": number, "rows": cleaned})
                page.close()
    if scanned:
        raise PlanError.empty_extraction(f"pages {scanned} have no text layer (scanned images)")
    text_chars = sum(len(p["text"]) for p in pages)
    ocr_pages = sum(p["source"] == "ocr" for p in pages)
    return StageResult(
        output={"pages": pages, "tables": tables},
        metrics={"text_chars": text_chars, "tables": len(tables), "ocr_pages": ocr_pages, "pages_analysed": len(pages)},
        summary=f"{text_chars} characters from {len(pages)} pages ({ocr_pages} by OCR), {len(tables)} tables",
    )
