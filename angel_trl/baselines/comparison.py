"""Which benchmark rows are angel-trl's and which are peers', and the best of each side.

The benchmark records every row's kind in its result file (``systems``); the paired test it runs and
the gap ``benchmarks/report.py`` prints both pick their two sides here, so they always compare the
same two rows. Torch-free: the report reads result files without loading any model.
"""

from __future__ import annotations

from collections.abc import Mapping

from angel_trl.defaults import ABLATION_OPEN, EXACT_FIRST_SUFFIX, HYBRID_SUFFIX

PEER = "peer"
ANGEL = "angel-trl"
# A hybrid's bracketed ablation row: its ranker is picked with test in view, so it is on neither side of a gap.
ABLATION = "angel-trl ablation"


def kinds_from_names(systems, models) -> dict[str, str]:
    """The kind of each row of a result file written before rows carried one: a model's rows are
    named after it (alone, with exact matches first, its hybrid and the hybrid's ablation rows)."""
    def kind(system: str) -> str:
        if any(system.startswith(m + HYBRID_SUFFIX + ABLATION_OPEN) for m in models):
            return ABLATION
        return ANGEL if any(system in (m, m + EXACT_FIRST_SUFFIX, m + HYBRID_SUFFIX) for m in models) else PEER

    return {s: kind(s) for s in systems}


def result_kinds(result: Mapping) -> dict[str, str]:
    """Every row's kind in a benchmark result: as recorded, else from the row names."""
    if result.get("systems"):
        return dict(result["systems"])
    names = {s for by_split in result["splits"].values() for s in by_split}
    return kinds_from_names(names, result["models"])


def best_of_each_side(scores: Mapping[str, Mapping], kinds: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The best angel-trl row and the best peer row of ``scores`` (system -> metrics of one split and
    protocol) by acc@1, the first listed on a tie; ablation rows are left out. None for a side that has no row."""
    def best(kind: str) -> str | None:
        rows = [s for s in scores if kinds.get(s) == kind]
        return max(rows, key=lambda s: scores[s]["acc@1"], default=None)

    return best(ANGEL), best(PEER)
