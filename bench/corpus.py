"""Documents for samples, tests and benchmarks: written by us in every supported format, and
real-world ones from Debian's documentation packages.

    python -m bench.corpus samples/documents          # the shipped samples (+ bad inputs)
    python -m bench.corpus /tmp/corpus --count 200 --megabytes 20   # a benchmark corpus
    python -m bench.corpus /tmp/real --real           # the real-document corpus (see REAL_DOCUMENTS)
"""

from __future__ import annotations

import argparse
import glob
import io
import random
import shutil
import zipfile
from pathlib import Path

TOPICS = {
    "durable-execution": [
        "Durable execution records every step of a workflow in an event history.",
        "When a worker process crashes, another worker replays the history and resumes the workflow where it stopped.",
        "Timers, retries and signals survive restarts because the Temporal server keeps them, not the process.",
        "Deterministic workflow code makes the replay produce the same commands as the first execution.",
    ],
    "saga-pattern": [
        "The saga pattern splits a long business transaction into local steps, each with a compensation.",
        "When the shipping label cannot be created, the saga releases the reserved stock and refunds the payment.",
        "Compensations run in reverse order, and each one must be idempotent because it may run twice.",
        "An idempotency key made of the workflow id and the step name prevents a double charge.",
    ],
    "document-pipelines": [
        "A document pipeline validates the file, parses it, splits it into chunks and extracts concepts.",
        "Sentence-aware chunking with overlap keeps the context of a concept inside one chunk.",
        "Claim checks keep large payloads in the database and pass only identifiers through the workflow.",
        "Rejected documents keep a status and a reason, so nothing disappears silently.",
    ],
    "circuit-breakers": [
        "A circuit breaker opens after repeated failures of a dependency and fails fast while it is open.",
        "After the recovery timeout the breaker lets one trial call through in the half-open state.",
        "Rate limits from a language model provider are honoured with the delay given in Retry-After.",
        "Each dependency class has its own retry policy with exponential backoff and a maximum interval.",
    ],
}
FORMATS = ("txt", "md", "html", "pdf", "docx")


def paragraphs(topic: str, count: int, rng: random.Random) -> list[str]:
    """``count`` paragraphs about ``topic``: its sentences, shuffled and recombined."""
    sentences = TOPICS[topic]
    return [" ".join(rng.sample(sentences, k=len(sentences))) for _ in range(count)]


def write_document(path: Path, title: str, body: list[str]) -> None:
    """Write ``body`` to ``path`` in the format its extension names."""
    fmt = path.suffix.lstrip(".")
    if fmt == "txt":
        path.write_text(title + "\n\n" + "\n\n".join(body) + "\n")
    elif fmt == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(body) + "\n")
    elif fmt == "html":
        items = "".join(f"<p>{p}</p>" for p in body)
        path.write_text(
            f"<!DOCTYPE html><html><head><title>{title}</title><style>p{{}}</style></head>"
            f"<body><h1>{title}</h1>{items}</body></html>"
        )
    elif fmt == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_auto_page_break(True, margin=15)
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, title + "\n\n" + "\n\n".join(body))
        path.write_bytes(bytes(pdf.output()))
    elif fmt == "docx":
        import docx

        document = docx.Document()
        document.add_heading(title, level=1)
        for paragraph in body:
            document.add_paragraph(paragraph)
        document.save(str(path))
    else:
        raise ValueError(f"unknown format {fmt}")


def write_bad_inputs(folder: Path) -> list[Path]:
    """Inputs the pipeline must reject, each for its own reason, named ``bad-*``."""
    import pypdf

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad-empty.txt").write_bytes(b"")
    (folder / "bad-mislabelled.pdf").write_text("This is plain text pretending to be a PDF.\n")
    (folder / "bad-latin1.txt").write_bytes("Caf\xe9 cr\xe8me, na\xefve fa\xe7ade.\n".encode("latin-1"))
    (folder / "bad-image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "bad-corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntruncated")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    (folder / "bad-encrypted.pdf").write_bytes(buffer.getvalue())
    with zipfile.ZipFile(folder / "bad-notaword.docx", "w") as archive:
        archive.writestr("hello.txt", "a zip, not a Word document")
    (folder / "bad-program.exe").write_bytes(b"MZ" + bytes(64))
    return sorted(folder.glob("bad-*"))


def write_samples(folder: Path) -> list[Path]:
    """One document per format, each on its own topic, plus the bad inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    written = []
    for fmt, topic in zip(FORMATS, [*TOPICS, "saga-pattern"], strict=True):
        path = folder / f"{topic}.{fmt}"
        write_document(path, topic.replace("-", " ").title(), paragraphs(topic, 6, rng))
        written.append(path)
    return written + write_bad_inputs(folder)


def write_corpus(folder: Path, count: int, megabytes: float, seed: int = 1) -> list[Path]:
    """``count`` documents of mixed formats adding up to at least ``megabytes``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = megabytes * 2**20
    # Bytes per paragraph differ by format (PDF compresses, DOCX has a fixed overhead):
    # write once at a first guess, then once more scaled to hit the target size.
    paragraph_bytes = 330.0
    for _ in range(2):
        rng = random.Random(seed)
        written = []
        for index in range(count):
            fmt = FORMATS[index % len(FORMATS)]
            topic = list(TOPICS)[index % len(TOPICS)]
            body = paragraphs(topic, max(1, int(target / count / paragraph_bytes)), rng)
            path = folder / f"doc-{index:05d}.{fmt}"
            write_document(path, f"{topic} {index}", body)
            written.append(path)
        total = sum(p.stat().st_size for p in written)
        if total >= target:
            break
        paragraph_bytes *= total / target * 0.98
    return written


REAL_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "maint-guide": ("/usr/share/doc/maint-guide/maint-guide.en.pdf", "/usr/share/doc/maint-guide/html/*.en.html"),
    "maint-guide-ja": ("/usr/share/doc/maint-guide-ja/html/*.ja.html",),
    "bash-doc": ("/usr/share/doc/bash/bash.pdf", "/usr/share/doc/bash/bashref.pdf", "/usr/share/doc/bash/*.html"),
    "developers-reference": (
        "/usr/share/developers-reference/developers-reference.pdf",
        "/usr/share/developers-reference/[a-r]*.html",
    ),
    "debian-reference-ja": ("/usr/share/debian-reference/debian-reference.ja.pdf",),
    "base-files": ("/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"),
}
"""Real manuals, HTML pages and licences, by the Debian package that installs them
(``.ci/run`` installs the packages; the licences come with every Debian system). English
and Japanese, PDF from TeX and Sphinx, HTML from DocBook, Texinfo and Sphinx."""
REAL_PACKAGES = tuple(package for package in REAL_DOCUMENTS if package != "base-files")


def copy_real_documents(folder: Path) -> list[Path]:
    """Copy the installed real documents into ``folder`` (licences get a ``.txt`` name);
    return them, none when no package is installed."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for package, patterns in REAL_DOCUMENTS.items():
        for source in sorted({Path(p) for pattern in patterns for p in glob.glob(pattern)}):
            known = source.suffix in (".pdf", ".html", ".txt")
            target = folder / f"{package}--{source.name}{'' if known else '.txt'}"
            shutil.copyfile(source, target)
            copied.append(target)
    return copied


def _text_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def _encrypted(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _scanned_pdf() -> bytes:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(image).text((20, 80), "A scanned page: pixels, not text.", fill=0)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=180)
    return bytes(pdf.output())


def write_awkward_documents(folder: Path) -> dict[Path, str | None]:
    """Documents real users have that once went wrong; each with the rejection reason it
    must get (None: it must be processed)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join(paragraphs("saga-pattern", 4, random.Random(3)))
    latin1 = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        "<title>Caf\xe9 cr\xe8me</title></head><body><p>Na\xefve fa\xe7ade: " + text + "</p></body></html>"
    )
    nested = folder / "nested" / "deeper"
    nested.mkdir(parents=True, exist_ok=True)
    files: dict[Path, tuple[bytes, str | None]] = {
        folder / "aes-user-password.pdf": (
            _encrypted(_text_pdf(text), "secret", "owner"),
            "encrypted PDF: it needs a password",
        ),
        folder / "aes-owner-password-only.pdf": (_encrypted(_text_pdf(text), "", "owner"), None),
        folder / "scanned.pdf": (_scanned_pdf(), "images only"),
        folder / "latin1-declared.html": (latin1.encode("latin-1"), None),
        folder / "utf16-with-bom.txt": (("\ufeff" + text).encode("utf-16-le"), None),
        nested / "in-a-subfolder.md": (f"# In a subfolder\n\n{text}".encode(), None),
        folder / "bell\x07in-the-name.txt": (text.encode(), "control characters"),
    }
    for path, (data, _reason) in files.items():
        path.write_bytes(data)
    return {path: reason for path, (_data, reason) in files.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, help="write a benchmark corpus of this many documents")
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--real", action="store_true", help="copy the real-document corpus (and awkward cases)")
    args = parser.parse_args()
    if args.real:
        files = copy_real_documents(args.folder) + list(write_awkward_documents(args.folder))
    else:
        files = write_corpus(args.folder, args.count, args.megabytes) if args.count else write_samples(args.folder)
    print(f"{len(files)} files in {args.folder}")
