"""Held-out mining by k-fold cross-fitting.

A stage-1 model is right at top-1 on ~98% of the training mentions it was trained on (NCBI, from
scratch), so mining its own training data mostly yields easy pairs. Cross-fitting trains stage 1 on
k-1 folds of the training documents and mines the held-out fold, for every fold, so the pairs
reflect the errors the model makes on mentions it has not seen.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import Counter
from pathlib import Path

from datasets import Dataset, concatenate_datasets

from angel_trl.data.corpus import Corpus
from angel_trl.data.arguments import DataArguments
from angel_trl.linking.linker import LINKER_CONFIG, EntityLinker
from angel_trl.mining import MiningConfig, mine_pairs
from angel_trl.training.stage1 import ModelArguments, train_stage1
from angel_trl.trainers import Stage1Config

logger = logging.getLogger(__name__)


def split_folds(corpus: Corpus, folds: int, seed: int) -> list[tuple[Corpus, Corpus]]:
    """``folds`` (train part, held-out part) splits of the documents, seeded."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if folds > len(corpus.documents):
        raise ValueError(f"{folds} folds but only {len(corpus.documents)} documents")
    order = list(range(len(corpus.documents)))
    random.Random(seed).shuffle(order)
    fold_of = {doc: i % folds for i, doc in enumerate(order)}
    out = []
    for k in range(folds):
        held = [d for i, d in enumerate(corpus.documents) if fold_of[i] == k]
        rest = [d for i, d in enumerate(corpus.documents) if fold_of[i] != k]
        out.append((Corpus(rest, f"{corpus.source} (folds != {k})"), Corpus(held, f"{corpus.source} (fold {k})")))
    return out


def cross_fit_mine(
    data_args: DataArguments, model_args: ModelArguments, stage1: Stage1Config, mining: MiningConfig, folds: int, only_folds: list[int] | None = None
) -> tuple[Dataset, dict]:
    """Train one stage-1 model per fold (in ``<output_dir>/fold-<k>``) and mine its held-out fold.

    ``only_folds``: run just these folds (all when unset), e.g. one fold per job, or fewer for a
    budget; the summary says which ran. A fold whose directory already holds a finished linker is
    mined without training it again, so an interrupted run resumes at the first unfinished fold.
    """
    train = data_args.load_split("train")
    if train is None:
        raise ValueError("cross-fitting needs a train_file")
    selected = list(range(folds)) if only_folds is None else sorted(set(only_folds))
    if not selected or not all(0 <= k < folds for k in selected):
        raise ValueError(f"only_folds must name folds in 0..{folds - 1}, got {only_folds}")
    parts, summaries = [], {}
    totals: Counter = Counter()
    splits = split_folds(train, folds, stage1.seed)
    for k in selected:
        rest, held = splits[k]
        fold_config = dataclasses.replace(stage1, output_dir=str(Path(stage1.output_dir) / f"fold-{k}"))
        if (Path(fold_config.output_dir) / LINKER_CONFIG).exists():
            logger.info("fold %d: reusing the finished stage-1 model in %s", k, fold_config.output_dir)
        else:
            train_stage1(dataclasses.replace(data_args, test_file=None), model_args, fold_config, train_corpus=rest)
        linker = EntityLinker.from_pretrained(fold_config.output_dir)
        pairs, summaries[f"fold-{k}"] = mine_pairs(linker, held, linker.kb, mining)
        totals.update({key: v for key, v in summaries[f"fold-{k}"].items() if isinstance(v, int)})
        parts.append(pairs)
    summary = {"folds": folds, "folds_mined": selected, **dict(sorted(totals.items())), "per_fold": summaries}
    if totals.get("mentions_linked"):
        summary["top1_correct_share"] = round(totals["top1_correct"] / totals["mentions_linked"], 4)
    return concatenate_datasets(parts), summary
