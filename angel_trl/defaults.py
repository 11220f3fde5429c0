"""Defaults that the command line shows in ``--help`` and the library uses, in one torch-free place.

``angel-trl --help`` must not import torch (seconds, and a CUDA probe), so the CLI cannot read them
from ``MiningConfig`` or ``LinkerConfig``; both of those take their defaults from here instead.
"""

MINING_RULES = ("paper", "all", "official", "tfidf")
MINING_DEFAULTS = {"rule": "paper", "top_k": 5, "num_beams": 10, "tfidf_negatives": 5}
# Beside the pairs (<output_dir>/<split>): one summary keyed by split, from recipes/mine.py, the CLI and cross-fitting.
MINING_SUMMARY = "mining_summary.json"
MAX_NAME_TOKENS = 64
