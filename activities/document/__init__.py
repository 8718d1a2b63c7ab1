"""The document family's activities and what they stand on, one concern a module:

- :mod:`.tables`: the document row and the version tables (chunks, mentions, concepts);
- :mod:`.roots`: the worker's document roots and the path checks (:class:`DocumentSettings`);
- :mod:`.formats`: format sniffing, and opening a PDF or .docx within the limits;
- :mod:`.extraction`: a document's plain text and its chunks;
- :mod:`.ranking`: merging the model's mentions into ranked concepts;
- :mod:`.listing`: a batch's folder listing, stored and read a page at a time;
- :mod:`.activities`: the activities themselves (:class:`DocumentActivities`).
"""

from sagaworks.activities.document.activities import TOP_CONCEPTS, DocumentActivities
from sagaworks.activities.document.extraction import html_text, parse_text, split_text
from sagaworks.activities.document.formats import EXTENSIONS, decode_text, detect_format
from sagaworks.activities.document.ranking import concept_key, rank_concepts
from sagaworks.activities.document.roots import DEFAULT_ROOT, DocumentSettings, roots_from_env
from sagaworks.activities.document.tables import (
    VERSION_TABLES,
    ChunkRow,
    ConceptRow,
    DocumentRow,
    ListingRow,
    MentionRow,
    rows_of,
)

__all__ = [
    "DEFAULT_ROOT",
    "EXTENSIONS",
    "TOP_CONCEPTS",
    "VERSION_TABLES",
    "ChunkRow",
    "ConceptRow",
    "DocumentActivities",
    "DocumentRow",
    "DocumentSettings",
    "ListingRow",
    "MentionRow",
    "concept_key",
    "decode_text",
    "detect_format",
    "html_text",
    "parse_text",
    "rank_concepts",
    "roots_from_env",
    "rows_of",
    "split_text",
]
