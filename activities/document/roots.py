"""Where documents may be read from: the worker's document roots and the path checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sagaworks import validation_error

if TYPE_CHECKING:
    from sagaworks.activities.llm import LLMProvider

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "samples" / "documents"
"""The document root when none is configured: the demo's samples, nothing else."""


def roots_from_env(variable: str, default: Path) -> tuple[Path, ...]:
    """The folders ``variable`` lists (os.pathsep-separated), resolved; ``default`` when unset."""
    raw = os.environ.get(variable)
    paths = [p for p in raw.split(os.pathsep) if p] if raw else [str(default)]
    return tuple(Path(p).resolve() for p in paths)


def _roots_from_env() -> tuple[Path, ...]:
    return roots_from_env("SAGAWORKS_DOCUMENT_ROOTS", DEFAULT_ROOT)


@dataclass(frozen=True)
class DocumentSettings:
    """Limits of the document activities (environment variables in parentheses) and their
    concept extractor."""

    roots: tuple[Path, ...] = field(default_factory=_roots_from_env)
    """Folders documents may be read from (``SAGAWORKS_DOCUMENT_ROOTS``, os.pathsep-separated;
    default ``samples/documents``, the demo's). Symlinks are resolved before the check; a
    relative path is relative to the first root."""
    max_bytes: int = field(default_factory=lambda: int(os.environ.get("SAGAWORKS_MAX_DOCUMENT_BYTES", 25 * 2**20)))
    """Largest document accepted (``SAGAWORKS_MAX_DOCUMENT_BYTES``, default 25 MiB)."""
    max_pdf_pages: int = 5_000
    max_unzipped_bytes: int = 200 * 2**20
    """Largest total a .docx may unpack to: refuses zip bombs."""
    extractor: LLMProvider | None = None
    """The concept extractor the LLM gateway falls back on, and the only one when no model
    is configured; None: the offline one (YAKE, in the worker's process pool)."""

    def describe_roots(self) -> str:
        """The roots in force, as a rejection or the worker's start message names them."""
        source = "SAGAWORKS_DOCUMENT_ROOTS" if os.environ.get("SAGAWORKS_DOCUMENT_ROOTS") else "default"
        return f"{os.pathsep.join(map(str, self.roots))} (this worker's document roots, {source})"

    def resolve(self, path_text: str) -> Path:
        """The real path of ``path_text`` (relative: to the first root), checked to lie under a root.

        Raises a validation error naming the path and the roots in force.
        """
        path = Path(path_text)
        if not path.is_absolute():
            path = self.roots[0] / path
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise validation_error(f"outside the allowed document roots: {self.describe_roots()}", field=path_text)
        return resolved
