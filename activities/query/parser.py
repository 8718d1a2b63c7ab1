"""The offline NLP provider: a deterministic, schema-aware question parser.

It reads a question against a :class:`~contracts.query.Schema` (column names, their
synonyms and few-valued columns' values) and produces a :class:`~contracts.query.QueryPlan`:
measures with count/sum/avg/min/max, group-by columns and date parts (year, month),
filters (values, comparisons, years and months), top-N and ordering. A word it cannot
place fails the question with "could not understand: ..." instead of a guess, unless it is
a filler (see :func:`_filler`): a word that cannot change the SQL, in a question whose
table, columns and aggregation it recognised. It is also the NLP fallback when the LLM's
breaker is open.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from sagaworks.contracts.query import (
    Aggregation,
    Comparison,
    DatePart,
    Dimension,
    Filter,
    Measure,
    Ordering,
    QueryPlan,
    Schema,
    TableInfo,
)


class NotUnderstood(ValueError):
    """The question cannot be mapped onto the schema; the message says which part."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"could not understand: {reason}")


Token = tuple[Any, ...]

_KEYWORDS: dict[str, Token] = {
    "how many": ("count",),
    "number of": ("count",),
    "count of": ("count",),
    "count": ("count",),
    "average": ("agg", "avg"),
    "avg": ("agg", "avg"),
    "mean": ("agg", "avg"),
    "total": ("agg", "sum"),
    "sum of": ("agg", "sum"),
    "sum": ("agg", "sum"),
    "maximum": ("extreme", "max"),
    "max": ("extreme", "max"),
    "highest": ("extreme", "max"),
    "largest": ("extreme", "max"),
    "biggest": ("extreme", "max"),
    "greatest": ("extreme", "max"),
    "most": ("extreme", "max"),
    "minimum": ("extreme", "min"),
    "min": ("extreme", "min"),
    "lowest": ("extreme", "min"),
    "smallest": ("extreme", "min"),
    "least": ("extreme", "min"),
    "fewest": ("extreme", "min"),
    "top": ("top", True),
    "bottom": ("top", False),
    "by": ("by",),
    "per": ("by",),
    "for each": ("by",),
    "for every": ("by",),
    "each": ("by",),
    "grouped by": ("by",),
    "broken down by": ("by",),
    "sorted by": ("sortby",),
    "ordered by": ("sortby",),
    "order by": ("sortby",),
    "sort by": ("sortby",),
    "in descending order": ("dir", True),
    "descending": ("dir", True),
    "in ascending order": ("dir", False),
    "ascending": ("dir", False),
    "more than": ("cmp", ">"),
    "greater than": ("cmp", ">"),
    "higher than": ("cmp", ">"),
    "over": ("cmp", ">"),
    "above": ("cmp", ">"),
    "at least": ("cmp", ">="),
    "less than": ("cmp", "<"),
    "fewer than": ("cmp", "<"),
    "lower than": ("cmp", "<"),
    "under": ("cmp", "<"),
    "below": ("cmp", "<"),
    "at most": ("cmp", "<="),
    "exactly": ("cmp", "="),
    "equal to": ("cmp", "="),
    "in": ("in",),
    "during": ("in",),
    "after": ("cmp_year", ">"),
    "since": ("cmp_year", ">="),
    "before": ("cmp_year", "<"),
    "until": ("cmp_year", "<="),
}
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_DATE_PARTS: dict[str, DatePart] = {
    "year": "year", "years": "year", "yearly": "year", "annual": "year", "annually": "year",
    "month": "month", "months": "month", "monthly": "month",
}  # fmt: skip
_STOPWORDS = set(
    "a an the of for on what whats is are was were be show me list give get find tell which how "
    "with and all to from there do does did have has had whose where that their its it data values value "
    "please across when whole overall i want see plot chart draw compare than as along per in".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")

MAX_FILLERS = 2
"""Unknown words a question may hold and still be answered; more and it is refused."""
_MEANING_WORDS = set(
    # negation and exclusion
    "not no nor never neither none without except excluding exclude excludes excluded other others "
    "besides but unless instead dont doesnt didnt isnt arent wasnt werent cant cannot wont havent hasnt "
    # restriction, comparison, ranges and order
    "only just solely between within beyond exceeding exceeds exceed equals equal versus vs or same "
    "first last next previous prior latest earliest recent ago newest oldest ranked rank "
    # numbers in words, shares and other measures the parser does not compute
    "zero one two three four five six seven eight nine ten eleven twelve twenty thirty fifty hundred "
    "thousand million billion dozen half double twice once percent percentage ratio share rate median "
    "mode variance deviation cumulative running distinct unique different difference change growth "
    "increase decrease minus plus times divided "
    # time the question may mean to filter on
    "recently lately currently now today tomorrow yesterday this these past current modern early late "
    # SQL itself: a question carrying a statement is no plain question, whatever else it asks
    "select insert update delete drop alter truncate create replace merge grant revoke union exec "
    "execute where join into values set table database schema pragma attach".split()
)
"""Words that may change what a question asks: never taken as fillers."""
_OPERAND_BEFORE = set(
    "by per in for of with from during after before since until over under above below than top "
    "bottom each named called about like".split()
)
"""Words after which an unknown word is likely a value or a column the question filters or
groups by ("cars from Ford", "count by region"): never a filler there."""


@dataclass
class _Reading:
    """What the question asks, gathered while its tokens are read."""

    table: TableInfo
    measures: list[Measure] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    dimensions: list[Dimension] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    sort: list[Ordering] = field(default_factory=list)
    limit: int | None = None
    descending: bool | None = None

    def add_measure(self, measure: Measure) -> None:
        if measure not in self.measures:
            self.measures.append(measure)

    def add_dimension(self, dimension: Dimension) -> None:
        if dimension not in self.dimensions:
            self.dimensions.append(dimension)

    def date_column(self) -> str | None:
        return next((c.name for c in self.table.columns if c.kind == "date"), None)

    def year_column(self) -> tuple[str, DatePart | None] | None:
        """What "in 2014" filters: a date column's year, or a column called "year"."""
        if (date := self.date_column()) is not None:
            return date, "year"
        column = next((c for c in self.table.columns if "year" in c.synonyms and c.kind == "number"), None)
        return (column.name, None) if column else None


def _phrases(table: TableInfo) -> dict[tuple[str, ...], Token]:
    """Every phrase the question may use for this table, mapped to its token."""
    phrases: dict[tuple[str, ...], Token] = {}

    def add(text: str, token: Token) -> None:
        words = tuple(_WORD.findall(text.lower()))
        if words:
            phrases.setdefault(words, token)

    for text, token in _KEYWORDS.items():
        add(text, token)
    for index, month in enumerate(_MONTHS, start=1):
        add(month, ("month_name", index))
    # Date parts only mean something for a table with a date column; without one,
    # "year" may be a column's synonym (the cars' model year).
    has_date = any(c.kind == "date" for c in table.columns)
    for column in table.columns:
        for value in column.values:
            add(value, ("val", column.name, value))
        for value, synonyms in column.value_synonyms.items():
            for word in synonyms:
                add(word, ("val", column.name, value))
    for column in table.columns:
        # Column phrases win over keywords and table words of the same length.
        for text in (column.name.replace("_", " "), *column.synonyms):
            words = tuple(_WORD.findall(text.lower()))
            if words and (not has_date or words[0] not in _DATE_PARTS):
                phrases[words] = ("col", column.name)
    if has_date:
        for text, part in _DATE_PARTS.items():
            add(text, ("part", part))
    for text in table.synonyms:
        add(text, ("noun",))
    return phrases


def _tokens(words: list[str], table: TableInfo) -> tuple[list[Token], list[str]]:
    """Longest-phrase-first tokens of the question and the words nothing explained."""
    phrases = _phrases(table)
    longest = max(len(p) for p in phrases)
    tokens: list[Token] = []
    unknown: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            chunk = tuple(words[i : i + size])
            token = phrases.get(chunk)
            if token is None and size == 1 and chunk[0].endswith("s"):
                token = phrases.get((chunk[0][:-1],))  # a plural of a one-word phrase
            if token is not None:
                tokens.append(token)
                i += size
                break
        else:
            word = words[i]
            if re.fullmatch(r"[0-9]+(\.[0-9]+)?", word):
                tokens.append(("num", float(word) if "." in word else int(word)))
            elif word not in _STOPWORDS:
                unknown.append(word)
            i += 1
    return tokens, unknown


def _score(words: list[str], table: TableInfo) -> int:
    tokens, unknown = _tokens(words, table)
    return sum(1 for t in tokens if t[0] in ("col", "val", "noun")) - len(unknown)


def parse_question(question: str, schema: Schema) -> QueryPlan:
    """The plan of ``question``; raises :class:`NotUnderstood` rather than guess."""
    words = _WORD.findall(question.lower().replace("'", ""))
    if not words:
        raise NotUnderstood("the question has no words")
    if not schema.tables:
        raise NotUnderstood("there are no tables to ask about")
    scores = [(_score(words, t), -i, t) for i, t in enumerate(schema.tables)]
    best_score, _, table = max(scores, key=lambda s: s[:2])
    tokens, unknown = _tokens(words, table)
    if not any(t[0] in ("col", "val", "noun", "count") for t in tokens):
        if unknown:
            raise NotUnderstood(f"{' '.join(unknown)!r} (the {table.name} table has: {_columns(table)})")
        raise NotUnderstood(f"{question!r} mentions none of the tables' columns")
    refused = [w for w in unknown if not _filler(w, question, words, schema)]
    if refused or len(unknown) > MAX_FILLERS:
        raise NotUnderstood(f"{' '.join(refused or unknown)!r} (the {table.name} table has: {_columns(table)})")
    reading = _Reading(table)
    _read(tokens, reading)
    return _plan(reading)


def _filler(word: str, question: str, words: list[str], schema: Schema) -> bool:
    """Whether an unknown ``word`` can be passed over without changing the answer.

    Refusing stays better than guessing: a word is a filler only if it is no negation,
    comparison or number (:data:`_MEANING_WORDS`, digits, comparatives and superlatives:
    "cheaper", "heaviest"), does not look like any table's column or value, is not written
    as a name ("Ford" inside the question), does not follow a word that takes an operand
    (:data:`_OPERAND_BEFORE`: "by region", "from Ford") and does not precede a word of the
    schema, as an adjective would ("hot days", "expensive stocks").
    """
    if word in _MEANING_WORDS or any(c.isdigit() for c in word):
        return False
    if len(word) >= 5 and re.fullmatch(r"[a-z]+(er|est|ers)", word):
        return False
    known = _schema_words(schema) | set(_MONTHS) | set(_DATE_PARTS)
    for i, w in enumerate(words):
        if w != word:
            continue
        if i > 0 and words[i - 1] in _OPERAND_BEFORE:
            return False
        following = words[i + 1] if i + 1 < len(words) else ""
        if following in known or following.removesuffix("s") in known:
            return False
    if re.search(rf"(?<!^)(?<![.?!] )\b{re.escape(word[0].upper() + word[1:])}\b", question.strip()):
        return False
    if re.search(rf"\b{re.escape(word.upper())}\b", question) and len(word) > 1:
        return False  # written in capitals: a name, an acronym or a keyword, not a filler
    return not any(_alike(word, schema_word) for schema_word in known)


def _schema_words(schema: Schema) -> set[str]:
    """Every word of every table's name, synonyms, columns, column synonyms and values."""
    texts: list[str] = []
    for table in schema.tables:
        texts += [table.name, *table.synonyms]
        for column in table.columns:
            texts += [column.name, *column.synonyms, *column.values]
            texts += [word for words in column.value_synonyms.values() for word in words]
    return {word for text in texts for word in _WORD.findall(text.lower().replace("_", " "))}


def _alike(word: str, known: str) -> bool:
    """A misspelling, inflection or part of a schema word ("mileage", "cylinder", "temps")."""
    if len(known) < 3:
        return word == known
    short = min(len(word), len(known))
    if short >= 4 and word[:4] == known[:4]:
        return True
    if len(known) >= 4 and (known in word or (len(word) >= 4 and word in known)):
        return True
    return difflib.SequenceMatcher(None, word, known).ratio() >= 0.8


def _columns(table: TableInfo) -> str:
    return ", ".join(c.name for c in table.columns)


def _kind(reading: _Reading, column: str) -> str:
    info = reading.table.column(column)
    assert info is not None
    return info.kind


def _read(tokens: list[Token], r: _Reading) -> None:
    i = 0
    n = len(tokens)

    def at(k: int) -> Token:
        return tokens[k] if k < n else ("end",)

    while i < n:
        t = tokens[i]
        kind = t[0]
        if kind == "count":
            r.add_measure(Measure(aggregation="count"))
            i += 1
            if at(i)[0] == "noun":
                i += 1
        elif kind in ("agg", "extreme"):
            aggregation: Aggregation = t[1]
            following = at(i + 1)
            if kind == "extreme" and following[0] in ("agg", "count"):
                # "highest average price": rank by the measure that follows
                r.descending = aggregation == "max"
                r.limit = r.limit or 1
                i += 1
                continue
            if kind == "extreme" and following[0] == "noun" and r.limit is not None:
                # "5 most ... cars by horsepower": the direction of a top-N
                r.descending = aggregation == "max"
                i += 1
                continue
            i += 1
            # "average microsoft stock price": values and table words may come between
            while at(i)[0] in ("val", "noun"):
                if at(i)[0] == "val":
                    _add_filter(r, Filter(column=at(i)[1], op="=", value=at(i)[2]))
                i += 1
            took = False
            while at(i)[0] == "col":
                column = at(i)[1]
                if _kind(r, column) != "number":
                    raise NotUnderstood(f"{aggregation} of {column}, which is not a number")
                r.add_measure(Measure(column=column, aggregation=aggregation))
                took = True
                i += 1
            if not took:
                raise NotUnderstood(f"{'/'.join(_words_for(t))} of what (expected a number column of {r.table.name})")
        elif kind == "top":
            if at(i + 1)[0] != "num" or not isinstance(at(i + 1)[1], int):
                raise NotUnderstood("top/bottom needs a whole number (top 5)")
            r.limit, r.descending = at(i + 1)[1], t[1]
            i += 2
        elif kind == "num" and at(i + 1)[0] == "extreme" and isinstance(t[1], int):
            r.limit, r.descending = t[1], at(i + 1)[1] == "max"  # "5 highest"
            i += 2
        elif kind in ("by", "sortby"):
            i = _read_by(tokens, i, r, sort=kind == "sortby")
        elif kind == "dir":
            r.descending = t[1]
            i += 1
        elif kind == "val":
            _add_filter(r, Filter(column=t[1], op="=", value=t[2]))
            i += 1
        elif kind == "col":
            column = t[1]
            nxt = at(i + 1)
            if nxt[0] == "cmp" and at(i + 2)[0] == "num":
                _number_filter(r, column, nxt[1], at(i + 2)[1])
                i += 3
            elif _kind(r, column) == "number":
                r.raw.append(column)
                i += 1
            else:
                r.add_dimension(Dimension(column=column))
                i += 1
        elif kind == "cmp":
            if at(i + 1)[0] == "num" and at(i + 2)[0] == "col":
                _number_filter(r, at(i + 2)[1], t[1], at(i + 1)[1])
                i += 3
            else:
                raise NotUnderstood(f"a comparison ({t[1]}) without a number and a column")
        elif kind == "num":
            if at(i + 1)[0] == "col" and _kind(r, at(i + 1)[1]) == "number":
                _number_filter(r, at(i + 1)[1], "=", t[1])  # "with 4 cylinders"
                i += 2
            else:
                raise NotUnderstood(f"the number {t[1]} here")
        elif kind == "in":
            nxt = at(i + 1)
            if nxt[0] == "num":
                _year_filter(r, "=", nxt[1])
                i += 2
            else:
                i += 1  # "in" before a value or a month: the next token says what
        elif kind == "cmp_year":
            if at(i + 1)[0] != "num":
                raise NotUnderstood(f"{'/'.join(_words_for(t))} needs a year")
            _year_filter(r, t[1], at(i + 1)[1])
            i += 2
        elif kind == "month_name":
            date = r.date_column()
            if date is None:
                raise NotUnderstood(f"{_MONTHS[t[1] - 1]}: {r.table.name} has no dates")
            _add_filter(r, Filter(column=date, date_part="month", op="=", value=t[1]))
            i += 1
        elif kind == "part":
            date = r.date_column()
            assert date is not None  # parts are only tokens of tables with dates
            r.add_dimension(Dimension(column=date, date_part=t[1]))
            i += 1
        else:  # noun
            i += 1


def _read_by(tokens: list[Token], i: int, r: _Reading, *, sort: bool) -> int:
    """``by``/``per``/``sorted by`` and what follows; returns the next index."""
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ("end",)
    if nxt[0] in ("agg", "extreme") and i + 2 < len(tokens) and tokens[i + 2][0] == "col":
        measure = Measure(column=tokens[i + 2][1], aggregation=nxt[1])
        r.add_measure(measure)
        r.sort.append(Ordering(by=measure.alias, descending=True))
        return i + 3
    if nxt[0] == "count":
        measure = Measure(aggregation="count")
        r.add_measure(measure)
        r.sort.append(Ordering(by=measure.alias, descending=True))
        return i + 2
    if nxt[0] == "part":
        date = r.date_column()
        assert date is not None
        dimension = Dimension(column=date, date_part=nxt[1])
        if sort:
            r.sort.append(Ordering(by=dimension.alias))
        r.add_dimension(dimension)
        return i + 2
    if nxt[0] == "col":
        column = nxt[1]
        ranking = sort or (r.limit is not None and _kind(r, column) == "number")
        if ranking:
            # "top 5 cars by horsepower", "sorted by weight": an order, not a grouping
            if _kind(r, column) == "number" and not any(m.column == column for m in r.measures):
                r.raw.append(column)
            alias = next((m.alias for m in r.measures if m.column == column), column)
            r.sort.append(Ordering(by=alias, descending=bool(r.descending) if r.descending is not None else not sort))
        else:
            r.add_dimension(Dimension(column=column))
        return i + 2
    raise NotUnderstood("'by' must be followed by a column, a date part or a measure")


def _number_filter(r: _Reading, column: str, op: Comparison, value: Any) -> None:
    if _kind(r, column) != "number":
        raise NotUnderstood(f"compare {column} with a number: it is not a number")
    _add_filter(r, Filter(column=column, op=op, value=value))


def _year_filter(r: _Reading, op: Comparison, value: Any) -> None:
    target = r.year_column()
    if target is None or not isinstance(value, int) or not 1000 <= value <= 9999:
        raise NotUnderstood(f"'{value}' as a year of {r.table.name}")
    column, part = target
    _add_filter(r, Filter(column=column, date_part=part, op=op, value=value))


def _add_filter(r: _Reading, new: Filter) -> None:
    for existing in r.filters:
        if (existing.column, existing.date_part) == (new.column, new.date_part) and "=" == existing.op == new.op:
            raise NotUnderstood(f"two values for {new.column} ({existing.value} and {new.value})")
    r.filters.append(new)


def _words_for(token: Token) -> list[str]:
    return [text for text, t in _KEYWORDS.items() if t == token][:2]


def _plan(r: _Reading) -> QueryPlan:
    aggregated = any(m.aggregation for m in r.measures)
    if aggregated:
        loose = [c for c in r.raw if not any(m.column == c for m in r.measures)]
        if loose:
            raise NotUnderstood(f"how to combine {', '.join(loose)} (say average, total, minimum or maximum)")
        measures = r.measures
        dimensions = r.dimensions
    else:
        if any(d.date_part for d in r.dimensions):
            what = ", ".join(r.raw) or "rows"
            raise NotUnderstood(f"how to combine {what} per {r.dimensions[0].alias} (say average, total, count...)")
        if not r.raw and not r.dimensions:
            raise NotUnderstood("what to show: name a column or a measure")
        measures = [Measure(column=c) for c in dict.fromkeys(r.raw)]
        label = r.table.label
        dimensions = ([Dimension(column=label)] if label else []) + [d for d in r.dimensions if d.column != label]
    ordering = list(r.sort)
    if not ordering and r.limit is not None:
        if not measures:
            raise NotUnderstood("top/bottom of what: name a measure")
        ordering = [Ordering(by=measures[0].alias, descending=r.descending is not False)]
    elif ordering and r.descending is not None:
        ordering = [o.model_copy(update={"descending": r.descending}) for o in ordering]
    aliases = [m.alias for m in measures] + [d.alias for d in dimensions]
    if len(set(aliases)) != len(aliases):
        raise NotUnderstood("the same column twice")
    # Dimensions break ties, so equal values come out in one documented order.
    ordered = {o.by for o in ordering}
    ordering += [Ordering(by=d.alias) for d in dimensions if d.alias not in ordered]
    plan = QueryPlan(
        table=r.table.name,
        measures=measures,
        dimensions=dimensions if aggregated or dimensions else [],
        filters=r.filters,
        order_by=ordering,
        limit=r.limit,
    )
    return plan.model_copy(update={"explanation": explain(plan)})


def explain(plan: QueryPlan) -> str:
    """The plan in words."""
    what = (
        ", ".join(
            (f"{m.aggregation} of {m.column}" if m.column else "count of rows") if m.aggregation else (m.column or "")
            for m in plan.measures
        )
        or "rows"
    )
    parts = [f"{what} from {plan.table}"]
    if plan.dimensions and any(m.aggregation for m in plan.measures):
        parts.append(
            "by " + ", ".join(f"{d.date_part} of {d.column}" if d.date_part else d.column for d in plan.dimensions)
        )
    if plan.filters:
        parts.append(
            "where "
            + " and ".join(
                f"{f.date_part + ' of ' if f.date_part else ''}{f.column} {f.op} {f.value}" for f in plan.filters
            )
        )
    if plan.order_by:
        parts.append("ordered by " + ", ".join(f"{o.by}{' desc' if o.descending else ''}" for o in plan.order_by))
    if plan.limit:
        parts.append(f"first {plan.limit}")
    return "; ".join(parts)
