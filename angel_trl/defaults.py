"""Defaults that the command line shows in ``--help`` and the library uses, in one torch-free place.

``angel-trl --help`` must not import torch (seconds, and a CUDA probe), so the CLI cannot read them
from ``MiningConfig`` or ``LinkerConfig``; both of those take their defaults from here instead.
"""

MINING_RULES = ("paper", "all", "official", "tfidf")
MINING_DEFAULTS = {"rule": "paper", "top_k": 5, "num_beams": 10, "tfidf_negatives": 5, "negatives_from": "beam"}
MINING_NEGATIVE_SOURCES = ("beam", "hybrid")  # what the rules paper and all rank: the beam's concepts, or the hybrid's candidates
# Beside the pairs (<output_dir>/<split>): one summary keyed by split, from recipes/mine.py, the CLI and cross-fitting.
MINING_SUMMARY = "mining_summary.json"
MAX_NAME_TOKENS = 64
# Which dev mentions the hybrid's ranker can be fit on, each with the words that describe it: in help
# texts, error messages and the benchmark's row labels (one table, so that none of them goes stale).
HYBRID_FIT_SET_INFO = {
    "all": {"row": "ranker fit on all of dev", "keeps": "every dev mention"},
    "unseen-text": {"row": "ranker fit on dev's unseen-text mentions", "keeps": "those whose text no training mention has"},
    "unseen-concept": {"row": "ranker fit on dev's unseen-concept mentions", "keeps": "those of concepts no training mention carries"},
}
HYBRID_FIT_SETS = tuple(HYBRID_FIT_SET_INFO)


def fit_sets_help() -> str:
    """The fit sets for a help text: "all (every dev mention); unseen-text (those whose ...); ..."."""
    return "; ".join(f"{name} ({info['keeps']})" for name, info in HYBRID_FIT_SET_INFO.items())
# How the benchmark names a model's derived rows (benchmarks/report.py reads them back):
# "<model> + exact match first", "<model>, hybrid" and its ablation rows "<model>, hybrid [<label>]".
EXACT_FIRST_SUFFIX = " + exact match first"
HYBRID_SUFFIX = ", hybrid"
ABLATION_OPEN = " ["
# The mention markers of encoder inputs (``left [ST] mention [ET] right``): special tokens of every
# tokenizer we train or extend. Text never contains them as such (see angel_trl.text.examples.plain_text).
START_MARKER = "[ST]"
END_MARKER = "[ET]"


def check_beams(num_beams: int, top_k: int, names: tuple[str, str] = ("num_beams", "top_k")) -> None:
    """Refuse a decoding setting whose top-k lists could not be full.

    Beam search returns at most ``num_beams`` names, so with fewer beams than ``top_k`` every
    "acc@k" would silently be an acc@num_beams.
    """
    beams, k = names
    for name, value in ((beams, num_beams), (k, top_k)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if num_beams < top_k:
        raise ValueError(f"{k} ({top_k}) is more than {beams} ({num_beams}): beam search returns at most {beams} names; raise {beams} to at least {top_k} or lower {k}")
