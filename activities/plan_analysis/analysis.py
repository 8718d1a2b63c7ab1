"""Stages 3-5: semantic analysis, causal extraction and mechanism inference (offline rules;
the semantic stage's optional LLM pass is :mod:`activities.plan_analysis.llm_pass`).

Spanish development plans follow a recognisable shape: strategic axes with goals
("Objetivo ..."), programmes ("Programa 1.2: ..."), each with an indicator, a baseline, a
target and a responsible office, and prose that says how an action produces an output that
serves an outcome ("Mediante ..., se ..., lo que contribuirá a ..."). These stages find
that shape with explicit patterns, each match carrying a confidence; the INSUFFICIENT_TEXT
mitigation accepts weaker (prose) matches, the EMPTY_CAUSAL_GRAPH one links programmes to
goals by shared vocabulary. The causal graph is a networkx DiGraph.
"""

from __future__ import annotations

import importlib.util
import math
import re
import unicodedata
from typing import Any

from sagaworks.activities.plan_analysis import llm_pass
from sagaworks.activities.plan_analysis.common import PlanError, StageContext, StageResult

EXPLICIT = 0.9
"""Confidence of a labelled element (``Programa 1.1: ...``, ``Objetivo 2: ...``)."""
PROSE = 0.4
"""Confidence of an element recognised in running prose only."""
MIN_ELEMENTS = 2

_HEADING = re.compile(r"^(?:\d+\.\s|Eje\b|Objetivo\b|Programa\b|Plan plurianual\b|PLAN PLURIANUAL\b)", re.M)
_GOAL = re.compile(r"^Objetivo(?:\s+estrat[ée]gico)?\s*(\d+(?:\.\d+)*)?\s*[:.]\s*(.+)$", re.M)
_PROGRAMME = re.compile(r"^Programa\s+(\d+(?:\.\d+)*)\s*[:.]\s*(.+)$", re.M)
_PROSE_GOAL = re.compile(r"[^.]*\b(?:se propone|busca|pretende|tiene como prop[óo]sito)\b[^.]*\.", re.I)
_PROSE_PROGRAMME = re.compile(r"\b(?:programa|proyecto|estrategia)\s+(?:de|para)\s+((?:\w+\s*){1,3})", re.I)
_FIELDS = {
    "indicator": re.compile(r"^Indicador\s*:\s*(.+)$", re.M),
    "baseline": re.compile(r"^L[íi]nea\s+base\s*:\s*(.+)$", re.M),
    "target": re.compile(r"^Meta\s*:\s*(.+)$", re.M),
    "responsible": re.compile(r"^Responsable\s*:\s*(.+)$", re.M),
}
_CLAUSE = r"(?:[^,;.]|(?<=\d)[.,](?=\d))+?"  # no clause break, but 1.300 and 8,4 are numbers
_CAUSAL = re.compile(
    rf"(?:mediante|a trav[ée]s de)\s+(?P<action>{_CLAUSE}),\s*(?P<output>{_CLAUSE}),?\s+"
    rf"(?:lo que|lo cual|con el fin de|que permitir[áa]|para)\s+(?P<outcome>(?:[^.;]|(?<=\d)\.(?=\d))+)",
    re.I,
)
_STOPWORDS = set(
    "a al con de del el en la las lo los para por que se su sus un una y o e the municipio municipal "
    "mediante través como más este esta estos estas".split()
)


def _plain(word: str) -> str:
    return unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()


def _words(text: str) -> set[str]:
    """Content-word stems (their first six letters: mejorar ~ mejoramiento)."""
    return {w[:6] for w in (_plain(t) for t in re.findall(r"\w+", text)) if len(w) > 3 and w not in _STOPWORDS}


def _text(ctx: StageContext) -> str:
    return "\n".join(page["text"] for page in ctx.upstream("extract")["pages"])


def _check_model() -> None:
    if importlib.util.find_spec("yake") is None:
        raise PlanError.nlp_model_missing("the keyphrase model (yake) is not installed on this worker")


def semantic(ctx: StageContext) -> StageResult:
    """Goals, programmes (with indicator, baseline, target, responsible) and key phrases."""
    _check_model()
    import yake

    text = _text(ctx)
    threshold = ctx.options.confidence
    headings = [m.start() for m in _HEADING.finditer(text)] + [len(text)]

    def block(start: int) -> str:
        end = next(h for h in headings if h > start)
        return text[start:end].strip()

    goals: list[dict[str, Any]] = []
    programmes: list[dict[str, Any]] = []
    events = sorted(
        [(m.start(), "goal", m) for m in _GOAL.finditer(text)]
        + [(m.start(), "programme", m) for m in _PROGRAMME.finditer(text)],
        key=lambda e: e[0],
    )
    current_goal: str | None = None
    for start, kind, match in events:
        if kind == "goal":
            current_goal = f"G{len(goals) + 1}"
            goals.append({"id": current_goal, "text": match.group(2).strip(), "confidence": EXPLICIT})
            continue
        body = block(start)
        fields = {
            name: (m.group(1).strip() if (m := pattern.search(body)) else None) for name, pattern in _FIELDS.items()
        }
        programmes.append(
            {
                "id": f"P{match.group(1)}",
                "code": match.group(1),
                "name": match.group(2).strip(),
                "goal_id": current_goal,
                "text": body,
                "confidence": EXPLICIT,
                **fields,
            }
        )
    if threshold <= PROSE:
        for sentence in _PROSE_GOAL.findall(text):
            goals.append({"id": f"G{len(goals) + 1}", "text": " ".join(sentence.split()), "confidence": PROSE})
        for match in _PROSE_PROGRAMME.finditer(text):
            sentence_start = text.rfind(".", 0, match.start()) + 1
            sentence_end = text.find(".", match.end())
            sentence = " ".join(text[sentence_start : sentence_end + 1 if sentence_end >= 0 else None].split())
            name = " ".join(match.group(0).split())
            if any(p["name"].lower() == name.lower() for p in programmes):
                continue
            programmes.append(
                {
                    "id": f"P-{len(programmes) + 1}",
                    "code": None,
                    "name": name,
                    "goal_id": goals[-1]["id"] if goals else None,
                    "text": sentence,
                    "confidence": PROSE,
                    "indicator": None,
                    "baseline": None,
                    "target": None,
                    "responsible": None,
                }
            )
    goals = [g for g in goals if g["confidence"] >= threshold]
    programmes = [p for p in programmes if p["confidence"] >= threshold]
    merged = llm_pass.merge(ctx.llm, ctx.options.llm, text, goals, programmes) if ctx.options.llm else None
    if len(goals) + len(programmes) < MIN_ELEMENTS:
        raise PlanError.insufficient_text(
            f"{len(text)} characters yield {len(goals)} goals and {len(programmes)} programmes "
            f"at confidence {threshold:g} (at least {MIN_ELEMENTS} elements needed)"
        )
    keyphrases = [k for k, _ in yake.KeywordExtractor(lan="es", n=3, top=12).extract_keywords(text)] if text else []
    indicators = sum(1 for p in programmes if p["indicator"])
    summary = (
        f"{len(goals)} goals, {len(programmes)} programmes, {indicators} with an indicator"
        f" (confidence >= {threshold:g})"
    )
    output: dict[str, Any] = {
        "goals": goals,
        "programmes": programmes,
        "keyphrases": keyphrases,
        "confidence": threshold,
    }
    if merged is not None:
        output["llm"] = {"model": ctx.options.llm, **merged}
        summary += "; " + ", ".join(f"{n} {what}" for what, n in merged.items()) + f" by {ctx.options.llm}"
    return StageResult(
        output=output,
        metrics={
            "goals": len(goals),
            "programmes": len(programmes),
            "indicators": indicators,
            "indicator_gap": len(programmes) - indicators,
        },
        summary=summary,
    )


def _in_scope(items: list[Any], scope: float) -> list[Any]:
    return items[: max(1, math.ceil(len(items) * scope))] if items else items


def causal(ctx: StageContext) -> StageResult:
    """The action -> output -> outcome graph of the programmes, linked to their goals."""
    import networkx as nx

    _check_model()
    found = ctx.upstream("semantic")
    goals = {g["id"]: g for g in found["goals"]}
    graph = nx.DiGraph()
    for goal in goals.values():
        graph.add_node(goal["id"], kind="goal", label=goal["text"])
    chains = 0
    for programme in _in_scope(found["programmes"], ctx.options.scope):
        pid = programme["id"]
        graph.add_node(pid, kind="programme", label=programme["name"])
        for number, match in enumerate(_CAUSAL.finditer(" ".join(programme["text"].split()))):
            action, output, outcome = (f"{pid}:{part}{number}" for part in ("a", "o", "r"))
            graph.add_node(action, kind="action", label=match.group("action").strip())
            graph.add_node(output, kind="output", label=match.group("output").strip())
            graph.add_node(outcome, kind="outcome", label=match.group("outcome").strip())
            graph.add_edge(pid, action, relation="implements", basis="pattern")
            graph.add_edge(action, output, relation="produces", basis="pattern")
            graph.add_edge(output, outcome, relation="contributes_to", basis="pattern")
            if programme["goal_id"] in goals:
                graph.add_edge(outcome, programme["goal_id"], relation="serves", basis="heading")
            chains += 1
        if ctx.options.vocabulary_links and not graph.out_degree(pid):
            shared = {gid: len(_words(programme["text"]) & _words(g["text"])) for gid, g in goals.items()}
            best = max(shared, key=lambda gid: shared[gid], default=None)
            if best is not None and shared[best] > 0:
                graph.add_edge(pid, best, relation="serves", basis=f"vocabulary ({shared[best]} shared words)")
    causal_edges = sum(
        1 for *_, d in graph.edges(data=True) if d["relation"] in ("produces", "contributes_to", "serves")
    )
    if causal_edges == 0:
        raise PlanError.empty_causal_graph(
            f"no causal link among {len(found['programmes'])} programmes and {len(goals)} goals"
            + ("" if ctx.options.vocabulary_links else " (explicit patterns only)")
        )
    return StageResult(
        output={"graph": nx.node_link_data(graph, edges="edges"), "chains": chains},
        metrics={"causal_nodes": graph.number_of_nodes(), "causal_edges": causal_edges, "chains": chains},
        summary=f"{graph.number_of_nodes()} nodes, {causal_edges} causal links, {chains} action-output-outcome chains",
    )


MECHANISMS = {
    "infraestructura": ("constru", "adecua", "dotaci", "mejoramiento", "pavimenta", "instala"),
    "formación": ("capacita", "formaci", "taller", "escuela", "asistencia técnica", "acompañamiento"),
    "transferencia": ("subsidio", "transferencia", "incentivo", "crédito", "beca", "bono"),
    "regulación": ("norma", "acuerdo", "reglament", "ordenamiento", "licencia"),
    "servicio": ("atención", "jornada", "brigada", "ruta", "servicio", "vacuna"),
}


def mechanisms(ctx: StageContext) -> StageResult:
    """The kind of mechanism behind each chain, and whether it reaches a goal."""
    import networkx as nx

    graph = nx.node_link_graph(ctx.upstream("causal")["graph"], edges="edges")
    goals = {n for n, d in graph.nodes(data=True) if d["kind"] == "goal"}
    found: list[dict[str, Any]] = []
    programmes = [n for n, d in graph.nodes(data=True) if d["kind"] == "programme"]
    for pid in _in_scope(programmes, ctx.options.scope):
        reaches_goal = any(nx.has_path(graph, pid, goal) for goal in goals)
        actions = [n for n in graph.successors(pid) if graph.nodes[n]["kind"] == "action"]
        if not actions and reaches_goal:
            found.append({"programme": pid, "type": "no determinado", "action": None, "complete": True})
        for action in actions:
            label = graph.nodes[action]["label"].lower()
            kind = next((k for k, stems in MECHANISMS.items() if any(s in label for s in stems)), "otro")
            found.append(
                {"programme": pid, "type": kind, "action": graph.nodes[action]["label"], "complete": reaches_goal}
            )
    complete = sum(1 for m in found if m["complete"])
    with_chain = len({m["programme"] for m in found})
    return StageResult(
        output={"mechanisms": found, "programmes": len(programmes)},
        metrics={"mechanisms": len(found), "complete_chains": complete, "programmes_with_chain": with_chain},
        summary=(
            f"{len(found)} mechanisms, {complete} reaching a goal, {with_chain}/{len(programmes)} programmes covered"
        ),
    )
