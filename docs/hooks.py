"""MkDocs hooks: fill the generated parts of the pages while the site builds (see docs/_gen.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _gen  # noqa: E402

MARKER = re.compile(r"<!-- generated: (configuration|families|reference|family ([a-z0-9-]+)) -->")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs' signature
    def fill(match: re.Match[str]) -> str:
        if match.group(1) == "configuration":
            return _gen.configuration_table()
        if match.group(1) == "families":
            return _gen.families_table()
        if match.group(1) == "reference":
            return _gen.reference_block()
        return _gen.family_facts(match.group(2))

    return MARKER.sub(fill, markdown)
