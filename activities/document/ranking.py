"""Concept ranking: the mentions the model found in each chunk, merged into a document's
concepts and ranked by their evidence across the document."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


def concept_key(name: str) -> str:
    """What makes two concept names one concept: case, spacing and a plural ``s`` aside."""
    words = name.lower().split()
    if words:
        last = words[-1]
        if len(last) > 4 and last.endswith("ies"):
            words[-1] = last[:-3] + "y"
        elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
            words[-1] = last[:-1]
    return " ".join(words)


@dataclass
class _Evidence:
    """Everything a document says about one concept (its mentions across chunks)."""

    name: str
    kind: str
    chunks: set[int] = field(default_factory=set)
    best: float = 0.0
    best_chunk: int = 0
    total: float = 0.0
    mentions: int = 0

    def add(self, name: str, salience: float, chunk: int) -> None:
        self.mentions += 1
        self.total += salience
        self.chunks.add(chunk)
        if salience > self.best:
            self.best, self.best_chunk = salience, chunk
        if len(name) < len(self.name):
            self.name = name  # the shortest spelling (the singular, usually) names the concept

    def absorb(self, other: _Evidence) -> None:
        self.mentions += other.mentions
        self.total += other.total
        self.chunks |= other.chunks
        if other.best > self.best:
            self.best, self.best_chunk = other.best, other.best_chunk

    def score(self, chunk_count: int) -> float:
        """Evidence across the document: spread over its chunks, frequency, best score.

        A concept found once with a high score ranks below one found in many chunks, so a
        long document's top concepts are what it keeps talking about.
        """
        spread = len(self.chunks) / max(chunk_count, 1)
        frequency = math.log1p(self.mentions) / math.log1p(max(chunk_count, 1))
        mean = self.total / self.mentions
        return round(0.45 * spread + 0.2 * min(frequency, 1.0) + 0.2 * self.best + 0.15 * mean, 4)


def rank_concepts(mentions: Iterable[tuple[str, str, float, int]], chunk_count: int) -> list[tuple[_Evidence, float]]:
    """Merge mentions (name, kind, salience, chunk) into concepts, best evidence first.

    Singular and plural spellings are one concept. Pieces of one longer name are folded
    into it when they never occur outside its chunks: a sub-phrase ("general public"
    inside "gnu general public license"), and two phrases that overlap by two words or more
    ("gnu general public" + "general public licenses" = "gnu general public licenses").
    """
    merged: dict[str, _Evidence] = {}
    for name, kind, salience, chunk in mentions:
        evidence = merged.setdefault(concept_key(name), _Evidence(name=name, kind=kind))
        evidence.add(name, salience, chunk)
    _join_overlapping(merged)
    _fold_sub_phrases(merged)
    ranked = [(evidence, evidence.score(chunk_count)) for evidence in merged.values()]
    return sorted(ranked, key=lambda pair: (-pair[1], -pair[0].best, pair[0].name))


def _join_overlapping(merged: dict[str, _Evidence]) -> None:
    by_start: dict[tuple[str, ...], list[str]] = {}
    for key in merged:
        words = tuple(key.split())
        if len(words) >= 2:
            by_start.setdefault(words[:2], []).append(key)
    pairs = []
    for left in merged:
        left_words = left.split()
        for overlap in range(2, len(left_words)):
            tail = left_words[-overlap:]
            for right in by_start.get(tuple(tail[:2]), []):
                right_words = right.split()
                if right != left and len(right_words) > overlap and right_words[:overlap] == tail:
                    pairs.append((left, right, overlap))
    # Strongest evidence first: the pair both of whose phrases occur most.
    pairs.sort(key=lambda p: (-min(len(merged[p[0]].chunks), len(merged[p[1]].chunks)), p[0], p[1]))
    for left, right, overlap in pairs:
        if left not in merged or right not in merged:
            continue
        small, large = sorted((merged[left], merged[right]), key=lambda e: len(e.chunks))
        # One name cut in two: each piece occurs where the other does.
        if not (small.chunks <= large.chunks and 2 * len(small.chunks) >= len(large.chunks)):
            continue
        name = " ".join(merged[left].name.split() + merged[right].name.split()[overlap:])
        joined = merged.pop(left)
        joined.absorb(merged.pop(right))
        joined.name = name
        key = concept_key(name)
        if key in merged:
            merged[key].absorb(joined)
        else:
            merged[key] = joined


def _fold_sub_phrases(merged: dict[str, _Evidence]) -> None:
    containing: dict[str, list[str]] = {}
    for key in merged:
        words = key.split()
        for size in range(1, len(words)):
            for start in range(len(words) - size + 1):
                containing.setdefault(" ".join(words[start : start + size]), []).append(key)
    for short in sorted(merged, key=lambda k: (len(k.split()), k)):
        longer = [k for k in containing.get(short, []) if k in merged and k != short]
        target = next(
            (k for k in sorted(longer, key=len, reverse=True) if merged[short].chunks <= merged[k].chunks), None
        )
        if target is not None:
            merged[target].absorb(merged.pop(short))
