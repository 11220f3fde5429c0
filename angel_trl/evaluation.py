"""Scores of a linker: acc@k over distinct concepts, split into mentions seen / unseen in training."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from angel_trl.data.corpus import Mention
from angel_trl.data.files import read_jsonl_objects
from angel_trl.metrics import linking_accuracy
from angel_trl.data.kb import KnowledgeBase, normalize_name
from angel_trl.linking.linker import Candidate, LinkingResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSeen:
    """What training holds, for the two splits of every report: a mention is *seen* when its
    normalised text occurs among the training mentions, and of a *seen concept* when one of its gold
    concepts is linked by some training mention (a new synonym of a trained concept is unseen text
    of a seen concept; a concept no training mention carries is where a model has only the KB)."""

    texts: frozenset[str]
    concepts: frozenset[str]

    @classmethod
    def of(cls, mentions: Iterable[Mention], kb: KnowledgeBase) -> TrainingSeen:
        mentions = list(mentions)
        concepts = {kb.canonical_id(g) for m in mentions if not m.is_nil for g in m.ids} - {None}
        return cls(frozenset(seen_mention_texts(mentions)), frozenset(concepts))

    def has_text(self, text: str) -> bool:
        """Whether a training mention has this text (normalised as every report's seen / unseen split)."""
        return normalize_name(text) in self.texts

    def has_concept_of(self, gold_ids: Iterable[str], kb: KnowledgeBase) -> bool:
        """Whether a training mention carries one of ``gold_ids`` (alternative ids mapped by ``kb``)."""
        return bool({kb.canonical_id(g) or g for g in gold_ids} & self.concepts)


def seen_mention_texts(mentions: Iterable[Mention]) -> set[str]:
    """Normalised texts of training mentions: a test mention with the same text counts as *seen*."""
    return {normalize_name(m.text) for m in mentions}


def candidate_rows(result: LinkingResult) -> list[dict]:
    """A result's ranked candidates as JSON-ready ``{"id", "name", "score"}`` rows (score to 4 places)."""
    return [{"id": c.concept_id, "name": c.name, "score": round(c.score, 4)} for c in result.candidates]


def source_digest(source: str) -> str:
    """A short digest of a model input (the mention in its context, as the model reads it), saved
    with each prediction: a saved ranking is reused only for the very inputs it was made from."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


def saved_results(path: str | Path, mentions: Sequence[Mention], sources: Sequence[str]) -> list[LinkingResult] | None:
    """The ranking a run saved as ``predictions_<split>.jsonl`` (:func:`evaluate_linking`'s rows),
    back as results for ``mentions`` (``sources``: their model inputs), or ``None`` when the file holds
    other mentions than these (NIL mentions have no row: they get an empty result, and scoring leaves
    them out anyway), the same mentions with other texts (an expanded abbreviation is linked as its
    long form) or in another context (the same offsets in edited documents), or rows saved without
    their input's digest (files written before it: they cannot tell). Scores come back rounded to 4
    places, as saved; ranks are unchanged."""
    rows = [row for _, row in read_jsonl_objects(path)]
    scored = [(m, source_digest(src)) for m, src in zip(mentions, sources, strict=True) if not m.is_nil]
    if [(row.get("mention_id"), row.get("mention"), row.get("source_sha1")) for row in rows] != [(m.mention_id, m.text, digest) for m, digest in scored]:
        return None
    saved = iter(rows)
    return [LinkingResult(m.text) if m.is_nil else LinkingResult(m.text, [Candidate(c["id"], c["name"], c["score"]) for c in next(saved)["predictions"]]) for m in mentions]


def evaluate_linking(
    mentions: Sequence[Mention],
    results: Sequence[LinkingResult],
    kb: KnowledgeBase,
    seen: TrainingSeen | None = None,
    ks: Sequence[int] = (1, 5),
    sources: Sequence[str] | None = None,
) -> tuple[dict, list[dict]]:
    """Metrics and per-mention prediction rows for ``results[i]`` linking ``mentions[i]``; with
    ``sources`` (the model inputs linked), each row keeps its input's :func:`source_digest`.

    NIL mentions are excluded (and counted); composite mentions count as correct when any gold id
    is predicted; gold ids missing from the KB are kept (they cannot be right) and counted. With
    ``seen``, every metric is also given for mentions of seen / unseen text and of seen / unseen
    concepts (:class:`TrainingSeen`).
    """
    if len(mentions) != len(results):
        raise ValueError(f"{len(mentions)} mentions but {len(results)} results")
    # Gold ids as the KB's own (alternative ids mapped); one missing from the KB is kept as written:
    # it cannot be predicted, so the mention counts as wrong, not as NIL.
    references = [[kb.canonical_id(g) or g for g in m.ids] if not m.is_nil else [] for m in mentions]
    predictions = [[kb.canonical_id(c) or c for c in r.top_ids] for r in results]
    seen_text = [seen.has_text(m.text) for m in mentions] if seen is not None else None
    seen_concept = [seen.has_concept_of(m.ids, kb) for m in mentions] if seen is not None else None
    groups = None
    if seen is not None:
        groups = {"seen": seen_text, "unseen": [not s for s in seen_text], "seen_concept": seen_concept, "unseen_concept": [not s for s in seen_concept]}
    scores, correct = linking_accuracy(predictions, references, ks, groups)
    metrics: dict = {"evaluated": scores["evaluated"], "nil_excluded": scores["nil_excluded"], "composite": sum(m.composite for m in mentions if not m.is_nil)}
    metrics["gold_not_in_kb"] = sum(not m.is_nil and all(kb.canonical_id(g) is None for g in m.ids) for m in mentions)
    if metrics["evaluated"] and metrics["gold_not_in_kb"] == metrics["evaluated"]:
        logger.warning("none of the %d mentions scored has a gold concept in the KB (%s): every score is 0 (a corpus annotated with another KB's ids?)", metrics["evaluated"], kb.source)
    metrics.update({key: value for key, value in scores.items() if key not in ("evaluated", "nil_excluded", "composite")})
    rows = [
        {
            "mention_id": m.mention_id,
            "mention": m.text,
            "gold": list(m.ids),
            "composite": m.composite,
            "seen": seen_text[i] if seen is not None else None,
            "seen_concept": seen_concept[i] if seen is not None else None,
            **{f"correct@{k}": correct[i][k] for k in ks},
            **({"source_sha1": source_digest(sources[i])} if sources is not None else {}),
            "predictions": candidate_rows(r),
        }
        for i, (m, r) in enumerate(zip(mentions, results))
        if not m.is_nil
    ]
    return metrics, rows


def link_and_score(
    linker, corpus, kb: KnowledgeBase, seen: TrainingSeen | None = None, show_progress: bool = False, what: str = "corpus",
) -> tuple[dict, list[dict]]:
    """Link every mention of ``corpus`` (named ``what`` in warnings) with ``linker`` and score it;
    the metrics also count the sources cut to the linker's ``max_source_length`` (``truncated_sources``)."""
    inputs = linker.inputs_for(corpus.mentions, corpus.texts())
    results = linker.link(inputs, show_progress=show_progress)
    metrics, rows = evaluate_linking(corpus.mentions, results, kb, seen, sources=[it.source for it in inputs])
    metrics["truncated_sources"] = count_truncated_sources(linker, inputs, what)
    return metrics, rows


def count_truncated_sources(linker, inputs, what: str = "corpus") -> int:
    """How many of ``inputs`` (``linker.inputs_for``: the ones just linked) have a source longer than
    the linker's ``max_source_length`` (the linker keeps the mention and cuts context from both sides);
    a warning names ``what`` and the setting that keeps them whole, since a score over cut sources
    reads like any other."""
    sources = [i.source for i in inputs]
    truncated = linker.encoder.sources(sources)[1]
    if truncated:
        logger.warning(
            "%s: %d of %d sources are longer than max_source_length=%d and were cut (context first; a mention longer than that loses its end); "
            "link with a larger max_source_length (recipes/evaluate.py --max_source_length, angel-trl --max-source-length) to keep them whole",
            what, truncated, len(sources), linker.encoder.max_source_length,
        )
    return truncated


def group_cell(metrics: dict, group: str, k: int = 1) -> str:
    """A table cell for acc@k over a group of mentions, with its count: ``"87.5 (120)"``; ``"- (0)"``
    for a group without mentions (its 0.0 in the metrics is over nothing, not a score), ``"-"`` where
    the metrics have no such group (no training split given)."""
    if f"{group}_acc@{k}" not in metrics:
        return "-"
    n = metrics[f"{group}_mentions"]
    return f"{metrics[f'{group}_acc@{k}']:.1f} ({n})" if n else "- (0)"


def scores_table(scores: dict[str, dict], title: str = "") -> str:
    """A markdown table of acc@1 / acc@5 (all; seen, unseen text; seen, unseen concept) per split,
    e.g. ``{"dev": metrics, ...}``."""
    head = "| split | mentions | acc@1 | acc@5 | seen acc@1 (n) | unseen acc@1 (n) | seen-concept acc@1 (n) | unseen-concept acc@1 (n) |\n|---|---|---|---|---|---|---|---|\n"
    lines = []
    for split, m in scores.items():
        groups = [group_cell(m, g) for g in ("seen", "unseen", "seen_concept", "unseen_concept")]
        overall = f"{m['acc@1']:.1f} | {m.get('acc@5', float('nan')):.1f}" if m["evaluated"] else "- | -"  # no mention with a gold concept
        lines.append(f"| {split} | {m['evaluated']} | {overall} | " + " | ".join(groups) + " |")
    return (f"{title}\n\n" if title else "") + head + "\n".join(lines)


def comparison_table(runs: dict[str, dict[str, dict]], splits: Sequence[str] = ("dev", "test")) -> str:
    """Markdown: one row per run (e.g. stage 1, stage 2), acc@1 / acc@5 per split.

    A stage-2 run that kept its starting model (``kept_start_model``: no checkpoint beat it on dev)
    says so, since its scores are then the stage-1 model's."""
    head = "| run | " + " | ".join(f"{s} acc@1 | {s} acc@5" for s in splits) + " |\n|---|" + "---|---|" * len(splits) + "\n"
    lines = []
    for run, scores in runs.items():
        cells = [f"{scores[s]['acc@1']:.1f} | {scores[s]['acc@5']:.1f}" if s in scores else "- | -" for s in splits]
        label = f"{run} (no checkpoint beat the start on dev: start model kept)" if scores.get("kept_start_model") else run
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def mcnemar(rows_a: Sequence[dict], rows_b: Sequence[dict], k: int = 1) -> dict:
    """Exact McNemar test on paired per-mention predictions (rows from :func:`evaluate_linking`).

    ``a_only`` / ``b_only`` count mentions only A / only B gets right at ``k``; the p-value is the
    two-sided binomial test of ``b_only`` among the discordant pairs.
    """
    from scipy.stats import binomtest

    key = f"correct@{k}"
    b = {r["mention_id"]: r[key] for r in rows_b}
    if set(b) != {r["mention_id"] for r in rows_a}:
        raise ValueError("the two runs scored different mentions")
    a_only = sum(1 for r in rows_a if r[key] and not b[r["mention_id"]])
    b_only = sum(1 for r in rows_a if not r[key] and b[r["mention_id"]])
    n = a_only + b_only
    p = binomtest(b_only, n, 0.5).pvalue if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}
