"""Accuracy by how close a mention is to its gold concept's names (the paper's similarity analysis).

Each evaluated mention gets the highest TF-IDF cosine (character 3-grams) between its text and any
name of a gold concept; accuracy is then reported per similarity bin. Low bins are the mentions a
string matcher cannot solve, where a generative linker should earn its keep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from angel_trl.data.kb import KnowledgeBase
from angel_trl.data.names import NameTable
from angel_trl.text.tfidf import TfidfNameMatcher

BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class GoldSimilarity:
    """Highest TF-IDF cosine between a mention and the names of its gold concepts."""

    def __init__(self, kb: KnowledgeBase, lowercase: bool = True):
        self.kb = kb
        self.table = NameTable.from_kb(kb, lowercase)
        self.matcher = TfidfNameMatcher(self.table)

    def __call__(self, mention: str, gold_ids: Sequence[str]) -> float | None:
        idx = sorted({i for g in gold_ids if (cid := self.kb.canonical_id(g)) for i in self.table.names_of_concept(cid)})
        return float(self.matcher.similarities(mention, idx).max()) if idx else None


def bin_label(lo: float, hi: float) -> str:
    return f"{lo:.1f}-{hi:.1f}"


def accuracy_by_similarity(rows: Sequence[dict], similarities: Sequence[float | None], edges: Sequence[float] = BIN_EDGES) -> dict[str, dict]:
    """``{bin: {"mentions": n, "acc@1": ...}}`` over prediction rows (``correct@1``); rows without a gold name in the KB are left out."""
    out = {bin_label(lo, hi): {"mentions": 0, "correct": 0} for lo, hi in zip(edges[:-1], edges[1:])}
    labels = list(out)
    for row, sim in zip(rows, similarities, strict=True):
        if sim is None:
            continue
        b = min(int(np.searchsorted(edges, sim, side="right")) - 1, len(labels) - 1)  # 1.0 falls in the last bin
        out[labels[max(b, 0)]]["mentions"] += 1
        out[labels[max(b, 0)]]["correct"] += bool(row["correct@1"])
    return {k: {"mentions": v["mentions"], "acc@1": 100.0 * v["correct"] / v["mentions"] if v["mentions"] else None} for k, v in out.items()}


def bins_table(by_system: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per bin (with its mention count), one column per system."""
    systems = list(by_system)
    bins = list(next(iter(by_system.values())))
    lines = ["| TF-IDF similarity | mentions | " + " | ".join(systems) + " |", "|---|---|" + "---|" * len(systems)]
    for b in bins:
        n = by_system[systems[0]][b]["mentions"]
        cells = ["-" if by_system[s][b]["acc@1"] is None else f"{by_system[s][b]['acc@1']:.1f}" for s in systems]
        lines.append(f"| {b} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_bins(by_system: dict[str, dict[str, dict]], path: str | Path, title: str = "") -> None:
    """Grouped bars of acc@1 per similarity bin, one colour per system (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    systems = list(by_system)
    bins = list(next(iter(by_system.values())))
    x = np.arange(len(bins))
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(1.6 * len(bins) + 5, 3.8))
    for i, s in enumerate(systems):
        vals = [by_system[s][b]["acc@1"] or 0.0 for b in bins]
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, vals, width, label=s)
    counts = [by_system[systems[0]][b]["mentions"] for b in bins]
    ax.set_xticks(x, [f"{b}\n(n={n})" for b, n in zip(bins, counts)])
    ax.set_xlabel("TF-IDF similarity between mention and closest gold name")
    ax.set_ylabel("acc@1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars reach every height
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Where a linker's errors sit relative to exact KB names: a string matcher gets the first kind free and
# cannot get the third (the annotation and the KB disagree) nor the last (no linker can), so the
# split says what a model must learn.
EXACT_NAME_KINDS = (
    "name of the gold concept only",
    "name of the gold concept and others",
    "name of other concepts only",
    "not a KB name",
    "gold concept not in the KB",
)


def exact_name_kind(mention: str, gold_ids: Sequence[str], kb: KnowledgeBase) -> str:
    """Which of :data:`EXACT_NAME_KINDS` a mention is: is its text (normalised) a KB name, and whose
    (a gold id the KB lacks, e.g. a concept newer than the KB, counts as absent)."""
    gold = {cid for g in gold_ids if (cid := kb.canonical_id(g))}
    if not gold:
        return EXACT_NAME_KINDS[4]
    owners = set(kb.ids_for_name(mention))
    if not owners:
        return EXACT_NAME_KINDS[3]
    if not owners & gold:
        return EXACT_NAME_KINDS[2]
    return EXACT_NAME_KINDS[0] if owners <= gold else EXACT_NAME_KINDS[1]


def accuracy_by_exact_name(rows: Sequence[dict], kb: KnowledgeBase, examples: int = 10) -> dict[str, dict]:
    """``{kind: {"mentions", "acc@1", "errors", "error_share", "top_errors"}}`` over prediction rows
    (``mention``, ``gold``, ``correct@1``, ``predictions``); ``error_share`` is the kind's share of all
    top-1 errors and ``top_errors`` its most frequent (mention, gold, predicted name) misses."""
    kinds = [exact_name_kind(r["mention"], r["gold"], kb) for r in rows]
    total_errors = sum(1 for r in rows if not r["correct@1"])
    out = {}
    for kind in EXACT_NAME_KINDS:
        mine = [r for r, k in zip(rows, kinds) if k == kind]
        wrong = [r for r in mine if not r["correct@1"]]
        misses = Counter((r["mention"].lower(), " ".join(r["gold"]), r["predictions"][0]["name"] if r["predictions"] else "(none)") for r in wrong)
        out[kind] = {
            "mentions": len(mine),
            "acc@1": 100.0 * (len(mine) - len(wrong)) / len(mine) if mine else None,
            "errors": len(wrong),
            "error_share": 100.0 * len(wrong) / total_errors if total_errors else None,
            "top_errors": [{"mention": m, "gold": g, "predicted": p, "count": c} for (m, g, p), c in misses.most_common(examples)],
        }
    return out
