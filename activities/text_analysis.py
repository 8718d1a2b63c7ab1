"""Offline text analysis shared by the text families (sequential, parallel-analysis, blog,
news-digest, the iterative search): sentiment, keywords, summaries, language, sentence
splitting and TextRank; the parallel-analysis family's activities wrap them
(``activities/parallel_analysis.py``).

Each library is maintained and ships its model in its wheel, so nothing downloads at run
time: VADER's lexicon (vaderSentiment), YAKE (statistical, no model), py3langid's model,
and TextRank (a sentence graph ranked by PageRank over numpy) for extractive summaries.
The analyses are CPU-bound and synchronous: the activities that call them run in the
worker's process pool.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Literal

from sagaworks.contracts.text import Keywords, Language, Sentiment, Summary, TextProfile

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# A short list is enough for the frequency fallback; YAKE carries its own stopwords.
STOPWORDS = frozenset(
    "a an and are as at be been but by for from has have in into is it its of on or that the "
    "their them then there these they this to was were which will with not can more most than "
    "also such other each our we you your do does how what when where who why all any".split()
)
WORDS_PER_MINUTE = 230


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: paragraphs (and headings) split after ., ! or ? followed by a
    capital or a digit."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        flat = " ".join(paragraph.split())
        sentences.extend(s for s in _SENTENCE_END.split(flat) if s)
    return sentences


def words(text: str) -> list[str]:
    """Lower-cased words (letters only, apostrophes kept inside words)."""
    return [w.lower() for w in _WORD.findall(text)]


def profile(text: str) -> TextProfile:
    """Counts of a text: characters, words, sentences and reading time."""
    count = len(words(text))
    return TextProfile(
        characters=len(text),
        words=count,
        sentences=len(split_sentences(text)),
        reading_seconds=round(count * 60 / WORDS_PER_MINUTE),
    )


@functools.cache
def _vader():  # -> SentimentIntensityAnalyzer (its lexicon file is read once per process)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_of(text: str) -> Sentiment:
    """VADER sentiment; ``compound`` >= 0.05 is positive, <= -0.05 negative."""
    scores = _vader().polarity_scores(text)
    compound = scores["compound"]
    label: Literal["positive", "negative", "neutral"] = (
        "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    )
    return Sentiment(
        label=label, compound=compound, positive=scores["pos"], neutral=scores["neu"], negative=scores["neg"]
    )


def keywords_of(text: str, top: int = 8) -> Keywords:
    """YAKE keyphrases of up to three words, best first."""
    import yake

    extractor = yake.KeywordExtractor(lan="en", n=3, top=top, dedupLim=0.7)
    return Keywords(keywords=[phrase for phrase, _score in extractor.extract_keywords(text)], method="yake")


def frequent_words(text: str, top: int = 8) -> Keywords:
    """The most frequent non-stopwords: the keyword fallback, cheap and always available."""
    counts = Counter(w for w in words(text) if w not in STOPWORDS and len(w) > 2)
    return Keywords(keywords=[w for w, _ in counts.most_common(top)], method="frequency")


def textrank(sentences: list[str], top: int) -> list[str]:
    """The ``top`` most central sentences, in their original order.

    Sentences are nodes; edges weigh the word overlap of two sentences normalised by
    their lengths (Mihalcea and Tarau, 2004); PageRank (damping 0.85, power iteration)
    ranks the nodes.
    """
    import numpy as np

    sentences = list(dict.fromkeys(sentences))  # a repeated sentence would be picked twice
    if len(sentences) <= top:
        return sentences
    bags = [set(w for w in words(s) if w not in STOPWORDS) for s in sentences]
    n = len(bags)
    weights = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            overlap = len(bags[i] & bags[j])
            if overlap and len(bags[i]) > 1 and len(bags[j]) > 1:
                weights[i, j] = weights[j, i] = overlap / (np.log(len(bags[i])) + np.log(len(bags[j])))
    out = weights.sum(axis=1, keepdims=True)
    # A sentence sharing no words with any other links to all, as PageRank's dangling nodes do.
    transition = np.where(out > 0, weights / np.where(out > 0, out, 1), 1 / n)
    ranks = np.full(n, 1 / n)
    for _ in range(100):
        updated = 0.15 / n + 0.85 * transition.T @ ranks
        if np.abs(updated - ranks).sum() < 1e-8:
            break
        ranks = updated
    best = sorted(range(n), key=lambda i: (-ranks[i], i))[:top]
    return [sentences[i] for i in sorted(best)]


def summary_of(text: str, sentences: int = 3) -> Summary:
    """An extractive TextRank summary of ``sentences`` sentences."""
    return Summary(sentences=textrank(split_sentences(text), sentences), method="textrank")


def lead_sentences(text: str, sentences: int = 3) -> Summary:
    """The first sentences: the summary fallback."""
    return Summary(sentences=split_sentences(text)[:sentences], method="lead")


@functools.cache
def _identifier():  # -> py3langid LanguageIdentifier with normalised probabilities
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: str) -> Language:
    """py3langid's most probable language and its probability."""
    code, probability = _identifier().classify(text)
    return Language(code=code, confidence=round(float(probability), 4))
