"""Real-world documents: Debian's manuals (PDF, HTML; English and Japanese) and licences.

The packages are installed by ``.ci/run`` (bench/corpus.py REAL_DOCUMENTS lists them); the
tests that need them skip, saying which, when they are missing. The licences come with
every Debian system.
"""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from bench.corpus import REAL_DOCUMENTS, REAL_PACKAGES, copy_real_documents, write_awkward_documents
from sagaworks.activities.db import Database
from sagaworks.activities.document import (
    ChunkRow,
    DocumentActivities,
    DocumentSettings,
    concept_key,
    parse_text,
    split_text,
)
from sagaworks.activities.llm import MAX_NAME, OfflineProvider
from sagaworks.contracts.document import BatchInput, ChunkInput, ExtractInput, StoreInput, ValidateInput
from sagaworks.worker import running_worker
from sagaworks.workflows.document_batch import DocumentBatch
from tests.documents import all_document_rows

REAL_PDFS = sorted(
    p
    for patterns in REAL_DOCUMENTS.values()
    for pattern in patterns
    if pattern.endswith(".pdf")
    for p in map(Path, [pattern])
    if p.exists()
)
GPL = Path("/usr/share/common-licenses/GPL-3")
JAPANESE_PDF = Path("/usr/share/debian-reference/debian-reference.ja.pdf")

needs_packages = pytest.mark.skipif(
    not REAL_PDFS or not JAPANESE_PDF.exists(),
    reason=f"the real-document corpus needs Debian's {', '.join(REAL_PACKAGES)} (.ci/run installs them)",
)


def _text(path: Path) -> str:
    settings = DocumentSettings(roots=(path.parent,))
    return parse_text(path, path.read_bytes(), "pdf" if path.suffix == ".pdf" else "txt", settings)


@needs_packages
@pytest.mark.parametrize("path", REAL_PDFS, ids=lambda p: p.name)
def test_pdf_text_keeps_the_spaces_between_words(path: Path) -> None:
    words = _text(path).split()
    run_together = [w for w in words if len(w) > 40 and w.isascii()]
    # pypdf ran 4.6% of the maint-guide's words together (747 "words" of 40+ letters).
    assert len(words) > 10_000 and len(run_together) / len(words) < 0.005, run_together[:5]


@needs_packages
def test_keyphrases_of_a_japanese_manual_always_fit_our_models() -> None:
    llm = OfflineProvider()
    chunks = split_text(_text(JAPANESE_PDF), 2000, 200)
    names = [c.name for chunk in chunks for c in llm.extract_concepts(chunk).concepts]
    assert len(chunks) > 300 and names
    assert max(len(n) for n in names) <= MAX_NAME


def _process_directly(path: Path, tmp_path: Path) -> list[tuple[str, float, int]]:
    """Run the document activities on ``path`` in order; return the top concepts (name, salience, mentions)."""
    db = Database(f"sqlite:///{tmp_path / 'direct.db'}")
    acts = DocumentActivities(db, OfflineProvider(), DocumentSettings(roots=(path.parent,)))
    env = ActivityEnvironment()
    try:
        doc = env.run(acts.validate_document, ValidateInput(path=str(path), run_key="direct"))
        chunks = env.run(
            acts.chunk_document, ChunkInput(document=doc, run_key="direct", chunk_size=2000, chunk_overlap=200)
        )
        for index in range(chunks.chunk_count):
            env.run(
                acts.extract_concepts,
                ExtractInput(
                    document_id=doc.document_id, content_hash=doc.rows_key, chunk_index=index, run_key="direct"
                ),
            )
        result = env.run(acts.store_concepts, StoreInput(document=doc, run_key="direct"))
    finally:
        db.dispose()
    assert chunks.chunk_count >= 15  # long enough for single-chunk scores to tie
    return [(c.name, c.salience, c.mentions) for c in result.top_concepts]


def test_concepts_of_a_long_licence_rank_by_evidence_and_merge_spellings(tmp_path: Path) -> None:
    if not GPL.exists():
        pytest.skip(f"{GPL} comes with Debian's base-files")
    licence = tmp_path / "GPL-3.txt"
    licence.write_bytes(GPL.read_bytes())
    top = _process_directly(licence, tmp_path)
    names = [name for name, _salience, _mentions in top]
    scores = [salience for _name, salience, _mentions in top]
    # Ranked by evidence: no crowd tied at the top, and not the alphabet's order.
    assert scores.count(scores[0]) <= 2 and names != sorted(names)
    # What the licence keeps talking about comes first.
    assert concept_key(names[0]) in {"covered work", "program", "license", "work", "source code"}, top[:5]
    assert top[0][2] >= 5
    # One concept per spelling: no singular/plural pair, and the licence's name once.
    keys = [concept_key(n) for n in names]
    assert len(keys) == len(set(keys))
    licence_name = {"gnu", "general", "public", "license", "licenses"}
    assert len([n for n in names if "general public" in n and set(n.split()) <= licence_name]) == 1, names


def test_plural_and_sub_phrases_are_one_concept() -> None:
    from sagaworks.activities.document import rank_concepts

    mentions = [
        ("gnu general public license", "entity", 0.9, 0),
        ("general public license", "term", 0.8, 0),
        ("gnu general public", "term", 0.7, 0),
        ("public license", "term", 0.6, 0),
        ("gnu general public license", "entity", 0.9, 1),
        ("public license", "term", 0.5, 1),
        ("license", "term", 0.5, 2),
        ("licenses", "term", 0.4, 3),
        ("libraries", "term", 0.4, 3),
        ("library", "term", 0.3, 4),
    ]
    ranked = {evidence.name: sorted(evidence.chunks) for evidence, _score in rank_concepts(mentions, 5)}
    # "license" stays its own concept: it also occurs where the licence's name does not.
    assert ranked == {"gnu general public license": [0, 1], "license": [2, 3], "library": [3, 4]}


@needs_packages
@pytest.mark.long  # a long run (`make test-long`): the whole real corpus
async def test_a_batch_over_the_real_corpus_processes_every_readable_document(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "real"
    real = copy_real_documents(corpus)
    awkward = write_awkward_documents(corpus)
    async with running_worker(
        dev_client,
        db,
        task_queue=task_queue,
        activity_threads=4,
        settings=[DocumentSettings(roots=(corpus,))],
    ):
        result = await dev_client.execute_workflow(
            DocumentBatch.run,
            BatchInput(folder=str(corpus), max_in_flight=4),
            id=f"batch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    outcomes = {Path(d.path): d for d in result.documents}
    assert result.total == len(real) + len(awkward) and result.failed == 0
    expected = {path: None for path in real} | awkward
    for path, reason in expected.items():
        outcome = outcomes[path]
        if reason is None:
            assert outcome.status == "COMPLETED" and outcome.concept_count, outcome
        else:
            assert outcome.status == "REJECTED" and reason in (outcome.error or ""), outcome
    rows = all_document_rows(db)
    assert {r.status for r in rows} <= {"COMPLETED", "REJECTED"}
    assert len(rows) == len(expected) - 1  # the name no input may carry never starts a run
    with db.transaction() as session:
        latin1 = next(r for r in rows if r.path.endswith("latin1-declared.html"))
        first = session.scalars(select(ChunkRow.text).where(ChunkRow.document_id == latin1.document_id)).first()
    assert first is not None and first.startswith("Café crème\nNaïve façade")


def test_awkward_documents_are_read_or_rejected_with_their_reason(tmp_path: Path) -> None:
    """Without the Debian packages too: the files real users have that once went wrong."""
    from temporalio.exceptions import ApplicationError

    from sagaworks.activities.document import detect_format

    settings = DocumentSettings(roots=(tmp_path,))
    for path, reason in write_awkward_documents(tmp_path).items():
        if "control characters" in (reason or ""):
            continue  # a batch rejects it before any activity (test_document_batch.py)
        data = path.read_bytes()
        try:
            text = parse_text(path, data, detect_format(path, data, settings), settings)
        except ApplicationError as err:
            assert reason is not None and reason in err.message, (path.name, err.message)
            continue
        assert reason is None and "saga" in text.lower(), path.name
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("word/document.xml", "<w:document><unclosed>")
    with pytest.raises(ApplicationError, match="corrupt .docx"):
        acts = DocumentActivities(Database(f"sqlite:///{tmp_path / 'a.db'}"), OfflineProvider(), settings)
        ActivityEnvironment().run(acts.validate_document, ValidateInput(path=str(broken), run_key="k"))
