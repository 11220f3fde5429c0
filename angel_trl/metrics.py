"""Linking accuracy as a metric: acc@k over distinct concepts, NIL excluded, composites right when
any gold id is ranked, and the same scores per group (seen / unseen text or concept).

:func:`linking_accuracy` is the computation :func:`angel_trl.evaluation.evaluate_linking` uses;
:class:`LinkingAccuracy` wraps it as a Hugging Face ``evaluate`` metric, for code that scores its
own predictions the way it scores other metrics::

    from angel_trl.metrics import LinkingAccuracy

    LinkingAccuracy().compute(predictions=[["D1", "D2"], ["D3"]], references=[["D2"], ["D4", "D3"]], k=[1, 5])
    # {'evaluated': 2, 'nil_excluded': 0, 'composite': 1, 'acc@1': 50.0, 'acc@5': 100.0}

It is a local class, not ``evaluate.load("...")``: a metric loaded by name is a Python script that
``evaluate`` downloads and runs, which this project does not do on a user's behalf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache


def linking_accuracy(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    k: Sequence[int] = (1, 5),
    groups: Mapping[str, Sequence[bool]] | None = None,
) -> tuple[dict, list[dict[int, bool]]]:
    """Scores of ranked concept ids against gold ids, and each mention's ``{k: correct}``.

    ``predictions[i]``: mention ``i``'s concept ids, best first (repeats count once: acc@k is over
    distinct concepts). ``references[i]``: its gold ids; none is a NIL mention, left out and counted
    (``nil_excluded``; its correctness is ``{}``); several make it composite, right when any is
    ranked. ``groups`` maps a group name to one flag per mention: every score is also given over the
    mentions flagged (``<group>_acc@k``, ``<group>_mentions``).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    groups = dict(groups or {})
    for name, flags in groups.items():
        if len(flags) != len(references):
            raise ValueError(f"group {name!r} has {len(flags)} flags for {len(references)} mentions")
    totals = dict.fromkeys(["all", *groups], 0)
    hits = {g: dict.fromkeys(k, 0) for g in totals}
    nil = composite = 0
    correct: list[dict[int, bool]] = []
    for i, (ranked, gold) in enumerate(zip(predictions, references)):
        if not gold:
            nil += 1
            correct.append({})
            continue
        composite += len(set(gold)) > 1
        distinct = list(dict.fromkeys(ranked))
        right = {n: bool(set(distinct[:n]) & set(gold)) for n in k}
        correct.append(right)
        for g in totals:
            if g == "all" or groups[g][i]:
                totals[g] += 1
                for n in k:
                    hits[g][n] += right[n]
    metrics: dict = {"evaluated": totals["all"], "nil_excluded": nil, "composite": composite}
    for g in totals:
        prefix = "" if g == "all" else f"{g}_"
        if g != "all":
            metrics[f"{g}_mentions"] = totals[g]
        for n in k:
            metrics[f"{prefix}acc@{n}"] = 100.0 * hits[g][n] / totals[g] if totals[g] else 0.0
    return metrics, correct


def __getattr__(name: str):
    # ``evaluate`` imports torch, transformers and datasets (seconds): only code that asks for the
    # metric class pays for it, not every import of the scoring function.
    if name == "LinkingAccuracy":
        return _linking_accuracy_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _linking_accuracy_class() -> type:
    import datasets
    import evaluate

    class LinkingAccuracy(evaluate.Metric):
        """:func:`linking_accuracy` as an ``evaluate`` metric: ``compute(predictions=..., references=...,
        k=[1, 5], groups={"unseen": [...]})`` or batch by batch with ``add_batch`` first."""

        def _info(self) -> evaluate.MetricInfo:
            return evaluate.MetricInfo(
                description="acc@k of ranked concept ids over distinct concepts; NIL mentions (no gold id) excluded; a composite mention is right when any gold id is ranked.",
                citation="",
                inputs_description="predictions: per mention, concept ids best first; references: per mention, gold concept ids (none: NIL). Keyword arguments: k (list of cut-offs), groups (name -> one flag per mention).",
                features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("string")), "references": datasets.Sequence(datasets.Value("string"))}),
            )

        def _compute(self, predictions, references, k: Sequence[int] = (1, 5), groups: Mapping[str, Sequence[bool]] | None = None) -> dict:
            return linking_accuracy(predictions, references, tuple(k), groups)[0]

    return LinkingAccuracy
