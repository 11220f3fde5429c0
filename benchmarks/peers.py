"""Dictionary and TF-IDF peers on a benchmark, scored with the same protocol as the linker.

    python benchmarks/peers.py --dataset ncbi --out benchmarks/results/peers_ncbi.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from angel_trl.baselines import ExactMatchLinker, TfidfLinker, with_training_mentions
from angel_trl.data import DataArguments
from angel_trl.evaluation import evaluate_linking, seen_mention_texts

DATASETS = {
    "ncbi": DataArguments(
        kb_path="{data_dir}/kb/medic/medic_06Jul2012.txt", kb_format="medic", corpus_format="pubtator",
        train_file="{data_dir}/ncbi-disease/NCBItrainset_corpus.txt", dev_file="{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt",
        test_file="{data_dir}/ncbi-disease/NCBItestset_corpus.txt",
    ),
    "bc5cdr-disease": DataArguments(
        kb_path="{data_dir}/kb/medic/medic_06Jul2012.txt", kb_format="medic", corpus_format="pubtator", entity_types=["Disease"],
        train_file="{data_dir}/bc5cdr/CDR_TrainingSet.PubTator.txt", dev_file="{data_dir}/bc5cdr/CDR_DevelopmentSet.PubTator.txt",
        test_file="{data_dir}/bc5cdr/CDR_TestSet.PubTator.txt",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="ncbi")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data = DATASETS[args.dataset]
    kb = data.load_kb()
    train = data.load_split("train")
    seen = seen_mention_texts(train.mentions)
    kb_train = with_training_mentions(kb, train)
    results = {}
    for split in ("dev", "test"):
        corpus = data.load_split(split)
        for name, linker in (("exact (KB)", ExactMatchLinker(kb)), ("exact (KB + train)", ExactMatchLinker(kb_train)), ("tfidf (KB)", TfidfLinker(kb)), ("tfidf (KB + train)", TfidfLinker(kb_train))):
            t0 = time.perf_counter()
            metrics, _ = evaluate_linking(corpus.mentions, linker.link(corpus.mentions), kb, seen)
            metrics["seconds"] = round(time.perf_counter() - t0, 2)
            results.setdefault(name, {})[split] = metrics
            print(split, name, {k: round(v, 1) if isinstance(v, float) else v for k, v in metrics.items() if "acc" in k})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"dataset": args.dataset, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
